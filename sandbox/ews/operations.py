"""The operations the sandbox answers, by SOAP operation name. Anything else gets ErrorInvalidRequest,
which is what Exchange says about an operation it does not offer at that version."""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from sandbox.ews import folder_ops, item_ops, misc_ops
from sandbox.ews.context import Context

Operation = Callable[[Context], list[etree._Element]]

OPERATIONS: dict[str, Operation] = {
    "GetFolder": folder_ops.get_folder,
    "FindFolder": folder_ops.find_folder,
    "CreateFolder": folder_ops.create_folder,
    "FindItem": item_ops.find_item,
    "GetItem": item_ops.get_item,
    "CreateItem": item_ops.create_item,
    "UpdateItem": item_ops.update_item,
    "DeleteItem": item_ops.delete_item,
    "ConvertId": misc_ops.convert_id,
}

#: Operations that change the store (the request log's ``write`` flag).
WRITES = frozenset({"CreateItem", "UpdateItem", "DeleteItem", "CreateFolder"})

#: Operations that need no mailbox (the version probe).
MAILBOXLESS = frozenset({"ConvertId"})
