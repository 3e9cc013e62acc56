"""The sandbox's EWS SOAP face: ``/EWS/Exchange.asmx`` as Exchange Server 2019 answers it, for the real
exchangelib. ``face.routes`` is the entry point; the other modules are its parts (SOAP envelope, items,
restrictions, operations, access, schema validation)."""
