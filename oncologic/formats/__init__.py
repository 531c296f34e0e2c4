"""Format layers around the contract: FHIR R4 in (:mod:`.fhir`), the FHIR ``Claim`` out
(:mod:`.fhir_claim`), X12 837 out and in (:mod:`.x12`), and the site configuration
(:mod:`.site`). None of them decides a code: they map formats to the contract's encounter and
render the engine's claim."""
