"""The ownership tag both backends read and write (DESIGN §2): named MAPI properties in our own property
set. EWS addresses them as ExtendedFieldURI(PropertySetId, PropertyName, PropertyType); Graph as
singleValueExtendedProperties with id ``"String {<set>} Name <name>"``. Same set, same names, so an
event written by one backend is found by the other after a switch.
"""

from __future__ import annotations

#: Our property set. Never change it: every event ever pushed carries it.
PROPERTY_SET = "c11ff724-aa03-4555-9952-8fa248a11c3e"
#: The source key of the entry the event was made from. Its presence is what makes an event ours.
SOURCE_KEY = "SourceKey"
#: The content hash we last wrote, so adoption after a restore or backend switch needs no write.
CONTENT_HASH = "ContentHash"


def graph_property_id(name: str) -> str:
    """Graph's id of one of our string properties (the name part is case-sensitive in filters)."""
    return f"String {{{PROPERTY_SET}}} Name {name}"
