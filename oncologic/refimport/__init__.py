"""The reference-data importer behind ``oncologic data``: agency files recognised by content
(readers, readers2, hcpcs, rxnorm; sniff picks one), turned into versioned fact files with a
manifest (store), and summarised by table and date of service (status). docs/reference-data.md."""
