"""Folder operations: GetFolder (exchangelib resolves ``account.root`` and ``account.calendar`` with it),
FindFolder and CreateFolder (the "dedicated mailbox" method keeps one calendar folder per person)."""

from __future__ import annotations

from lxml import etree

from sandbox.ews.context import Context, FolderRef, root_id
from sandbox.ews.errors import FOLDER_EXISTS, INVALID_OPERATION, INVALID_REQUEST, EwsError
from sandbox.ews.soap import m, response_message, t
from sandbox.tenant import CALENDAR, Folder

CALENDAR_CLASS = "IPF.Appointment"


def _children(ctx: Context, ref: FolderRef) -> list[Folder]:
    folders = ctx.tenant.mailbox(ref.mailbox).folders
    if ref.folder is None:  # the root holds the calendar
        return [folders[CALENDAR]]
    return [f for f in folders.values() if f.parent_id == ref.folder.id]


def render_folder(ctx: Context, ref: FolderRef) -> etree._Element:
    """BaseFolderType's sequence: FolderId, ParentFolderId, FolderClass, DisplayName, TotalCount,
    ChildFolderCount, ..., then FolderType's UnreadCount (the root) or nothing more (calendars)."""
    is_root = ref.folder is None
    elem = etree.Element(t("Folder" if is_root else "CalendarFolder"))
    if ref.folder is None:
        etree.SubElement(elem, t("FolderId"), Id=root_id(ref.mailbox))
        etree.SubElement(elem, t("DisplayName")).text = "Top of Information Store"
        etree.SubElement(elem, t("TotalCount")).text = "0"
    else:
        folder = ref.folder
        etree.SubElement(elem, t("FolderId"), Id=folder.id, ChangeKey=folder.change_key)
        etree.SubElement(elem, t("ParentFolderId"), Id=folder.parent_id or root_id(ref.mailbox))
        etree.SubElement(elem, t("FolderClass")).text = CALENDAR_CLASS
        etree.SubElement(elem, t("DisplayName")).text = folder.name
        count = len(ctx.tenant.items(ref.mailbox, folder.id))
        etree.SubElement(elem, t("TotalCount")).text = str(count)
    etree.SubElement(elem, t("ChildFolderCount")).text = str(len(_children(ctx, ref)))
    if is_root:
        etree.SubElement(elem, t("UnreadCount")).text = "0"
    return elem


def _folder_ids(ctx: Context, container: str) -> list[etree._Element]:
    elem = ctx.op.find(m(container))
    return [] if elem is None else [c for c in elem if isinstance(c.tag, str)]


def get_folder(ctx: Context) -> list[etree._Element]:
    out = []
    for id_elem in _folder_ids(ctx, "FolderIds"):
        msg = response_message("GetFolder")
        try:
            ref = ctx.resolve_folder(id_elem)
            etree.SubElement(msg, m("Folders")).append(render_folder(ctx, ref))
        except EwsError as exc:
            msg = response_message("GetFolder", exc.code, exc.message)
        out.append(msg)
    return out


def find_folder(ctx: Context) -> list[etree._Element]:
    view = ctx.op.find(m("IndexedPageFolderView"))
    offset = int(view.get("Offset", "0")) if view is not None else 0
    limit = int(view.get("MaxEntriesReturned", "0") or 0) if view is not None else 0
    deep = ctx.op.get("Traversal") == "Deep"
    out = []
    for id_elem in _folder_ids(ctx, "ParentFolderIds"):
        try:
            parent = ctx.resolve_folder(id_elem)
        except EwsError as exc:
            out.append(response_message("FindFolder", exc.code, exc.message))
            continue
        found: list[FolderRef] = []
        queue = [parent]
        while queue:
            current = queue.pop(0)
            for child in _children(ctx, current):
                found.append(FolderRef(parent.mailbox, child))
                if deep:
                    queue.append(FolderRef(parent.mailbox, child))
        page = found[offset : offset + limit] if limit else found[offset:]
        last = offset + len(page) >= len(found)
        msg = response_message("FindFolder")
        root = etree.SubElement(
            msg,
            m("RootFolder"),
            IndexedPagingOffset=str(offset + len(page)),
            TotalItemsInView=str(len(found)),
            IncludesLastItemInRange="true" if last else "false",
        )
        folders = etree.SubElement(root, t("Folders"))
        for ref in page:
            folders.append(render_folder(ctx, ref))
        out.append(msg)
    return out


def create_folder(ctx: Context) -> list[etree._Element]:
    parent_ids = _folder_ids(ctx, "ParentFolderId")
    if len(parent_ids) != 1:
        raise EwsError(INVALID_REQUEST, "CreateFolder needs one ParentFolderId.", fault=True)
    folders = ctx.op.find(m("Folders"))
    out = []
    for spec in [] if folders is None else [c for c in folders if isinstance(c.tag, str)]:
        try:
            parent = ctx.resolve_folder(parent_ids[0])
            if parent.folder is None:
                raise EwsError(
                    INVALID_OPERATION, "The sandbox keeps calendar folders only: create them under one."
                )
            name = spec.findtext(t("DisplayName")) or ""
            siblings = _children(ctx, parent)
            if not name or any(f.name.lower() == name.lower() for f in siblings):
                raise EwsError(FOLDER_EXISTS, f"A folder named {name!r} already exists.")
            folder = ctx.tenant.create_folder(parent.mailbox, name, parent.folder.id)
            msg = response_message("CreateFolder")
            created = etree.SubElement(etree.SubElement(msg, m("Folders")), t("CalendarFolder"))
            etree.SubElement(created, t("FolderId"), Id=folder.id, ChangeKey=folder.change_key)
        except EwsError as exc:
            msg = response_message("CreateFolder", exc.code, exc.message)
            etree.SubElement(msg, m("Folders"))
        out.append(msg)
    return out
