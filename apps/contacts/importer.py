"""Reading contact files: encodings, delimiters, previews, Google Sheets, and the bulk run.

The run reads the stored file once, row by row, and writes each chunk of CHUNK_ROWS rows in
one transaction: one SELECT for the numbers that already exist, one batched INSERT for the new
contacts, batched UPDATEs for the changed ones, one INSERT for their tags, and the import's
progress. A 100,000-row file is a few dozen statements per chunk, not one per row.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from django.db import connections, router, transaction
from django.db.models import F
from django.utils import timezone

from apps.core.bulk import insert_rows
from apps.core.exceptions import ApplicationError
from apps.core.netsafety import UnsafeURL, check_public_url
from apps.core.phone import InvalidPhoneNumber, normalize_wa_id

from .attributes import InvalidAttributeValue, parse_value
from .models import AttributeDefinition, Contact, ContactImport, ContactTag, Tag

MAX_FILE_BYTES = 25 * 1024 * 1024
MAX_COLUMNS = 200
FETCH_CONNECT_TIMEOUT = 5
FETCH_TOTAL_SECONDS = 30
FETCH_MAX_REDIRECTS = 5
CHUNK_ROWS = 2000
ERRORS_KEPT = 20_000
PREVIEW_ROWS = 5
DELIMITERS = (",", ";", "\t", "|")
TAG_SPLIT_RE = re.compile(r"[,;|]")
MAX_TAG_LENGTH = Tag._meta.get_field("name").max_length
MAX_NAME_LENGTH = Contact._meta.get_field("name").max_length

csv.field_size_limit(1024 * 1024)


# --- reading a file ------------------------------------------------------------------------

def detect_encoding(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "cp1252"  # what spreadsheet programs write on Windows; latin-1 is a subset
    return "utf-8"


def decode(data: bytes, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return data.decode("latin-1")


def detect_delimiter(text: str) -> str:
    """The delimiter that splits the header line into the most columns (outside quotes)."""
    first_line = next(iter(text.splitlines()), "")
    best, best_columns = ",", 1
    for delimiter in DELIMITERS:
        columns = len(next(csv.reader([first_line], delimiter=delimiter), []))
        if columns > best_columns:
            best, best_columns = delimiter, columns
    return best


def _blank(row: list[str]) -> bool:
    return all(not cell.strip() for cell in row)


@dataclass
class FileSummary:
    encoding: str
    delimiter: str
    headers: list[str]
    total_rows: int


def summarize(data: bytes) -> FileSummary:
    """Encoding, delimiter, header row and the number of data rows (blank rows included, as
    the run counts them). Refuses empty files and files with no header."""
    if not data.strip():
        raise ApplicationError("The file is empty.", code="import_empty_file")
    if b"\x00" in data[:4096] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ApplicationError("This does not look like a CSV file (it contains binary data). "
                               "Export the spreadsheet as CSV and upload that.", code="import_not_csv")
    encoding = detect_encoding(data)
    text = decode(data, encoding)
    delimiter = detect_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        headers = next((row for row in reader if not _blank(row)), None)
        if headers is None:
            raise ApplicationError("The file has no header row.", code="import_empty_file")
        total = sum(1 for _ in reader)
    except csv.Error as exc:
        raise ApplicationError(f"The file could not be read as CSV: {exc}.", code="import_not_csv") from exc
    headers = [header.strip() for header in headers]
    if len(headers) > MAX_COLUMNS:
        raise ApplicationError(f"The file has {len(headers)} columns; at most {MAX_COLUMNS} are supported.",
                               code="import_too_many_columns")
    return FileSummary(encoding=encoding, delimiter=delimiter, headers=headers, total_rows=total)


def read_rows(contact_import: ContactImport) -> Iterator[tuple[int, list[str]]]:
    """(spreadsheet row number, cells) for every data row, blank ones included. The header is
    row 1 when it is the first line, so row numbers match what a spreadsheet program shows."""
    with contact_import.file.open("rb") as handle:
        data = handle.read()
    text = decode(data, contact_import.encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=contact_import.delimiter)
    header_seen = False
    for cells in reader:
        if not header_seen:
            if _blank(cells):
                continue
            header_seen = True
            continue
        yield reader.line_num, cells


def preview_rows(contact_import: ContactImport, limit: int = PREVIEW_ROWS) -> list[list[str]]:
    rows = []
    width = len(contact_import.headers)
    for _, cells in read_rows(contact_import):
        if _blank(cells):
            continue
        rows.append((cells + [""] * width)[:width])
        if len(rows) >= limit:
            break
    return rows


# --- Google Sheets -------------------------------------------------------------------------

SHEET_RE = re.compile(r"^/spreadsheets/d/(?P<id>[A-Za-z0-9_-]{10,})")


def sheet_csv_url(url: str) -> str:
    """A Google Sheets link (edit, view or share link) -> its CSV export URL. Other http(s)
    URLs (a published ``…/pub?output=csv`` link, any CSV file) are fetched as they are."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ApplicationError("Paste the link of a Google Sheet (https://docs.google.com/spreadsheets/…).",
                               code="import_invalid_url")
    if parts.hostname == "docs.google.com":
        match = SHEET_RE.match(parts.path)
        if match and "/pub" not in parts.path and "/export" not in parts.path:
            gid = (parse_qs(parts.query).get("gid") or parse_qs(parts.fragment).get("gid") or ["0"])[0]
            gid = gid if gid.isdigit() else "0"
            return f"https://docs.google.com/spreadsheets/d/{match.group('id')}/export?format=csv&gid={gid}"
    return url


def fetch_csv(url: str) -> bytes:
    """GET ``url`` with the SSRF check on it and on every redirect, a connect timeout, an
    overall deadline and a size cap. Errors say what to do, in words."""
    deadline = time.monotonic() + FETCH_TOTAL_SECONDS
    current = url
    with requests.Session() as session:
        for _ in range(FETCH_MAX_REDIRECTS + 1):
            try:
                check_public_url(current)
            except UnsafeURL as exc:
                raise ApplicationError(f"That address cannot be fetched: {exc}.", code="import_unsafe_url") from exc
            try:
                response = session.get(current, stream=True, allow_redirects=False,
                                       timeout=(FETCH_CONNECT_TIMEOUT, FETCH_TOTAL_SECONDS),
                                       headers={"Accept": "text/csv, text/plain;q=0.9, */*;q=0.1"})
            except requests.RequestException as exc:
                raise ApplicationError(f"The sheet could not be downloaded ({exc.__class__.__name__}). "
                                       "Check the link and try again.", code="import_fetch_failed") from exc
            with response:
                if response.is_redirect:
                    current = urljoin(current, response.headers.get("Location", ""))
                    continue
                if response.status_code in (401, 403, 404):
                    raise ApplicationError(
                        "Google refused to share that sheet. In Google Sheets choose Share → General access → "
                        "“Anyone with the link”, then paste the link again.", code="import_sheet_not_public")
                if response.status_code >= 400:
                    raise ApplicationError(f"The sheet could not be downloaded: the server answered "
                                           f"{response.status_code}.", code="import_fetch_failed")
                content_type = response.headers.get("Content-Type", "")
                if "text/html" in content_type:
                    raise ApplicationError(
                        "That link leads to a web page, not a CSV file: the sheet is probably not shared. "
                        "In Google Sheets choose Share → General access → “Anyone with the link”.",
                        code="import_sheet_not_public")
                chunks, size = [], 0
                for chunk in response.iter_content(64 * 1024):
                    size += len(chunk)
                    if size > MAX_FILE_BYTES:
                        raise ApplicationError(f"The sheet is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB.",
                                               code="import_too_large")
                    if time.monotonic() > deadline:
                        raise ApplicationError(f"The sheet took longer than {FETCH_TOTAL_SECONDS} s to download.",
                                               code="import_fetch_failed")
                    chunks.append(chunk)
                return b"".join(chunks)
    raise ApplicationError("The link redirects too many times.", code="import_fetch_failed")


# --- mapping -------------------------------------------------------------------------------

PHONE_WORDS = ("phone", "mobile", "number", "whatsapp", "wa_id", "wa id", "msisdn", "cell", "tel", "telefone",
               "teléfono", "telefono", "celular", "contact number")
NAME_WORDS = ("name", "full name", "contact name", "nome", "nombre", "customer")
TAG_WORDS = ("tags", "tag", "labels", "groups", "segments")


def guess_mapping(headers: list[str], definitions: list[AttributeDefinition]) -> list[str]:
    """A first mapping from header names; the person checks it before running."""
    by_key = {d.key: d for d in definitions}
    by_label = {d.label.strip().lower(): d for d in definitions}
    mapping: list[str] = []
    for header in headers:
        word = header.strip().lower()
        target = ""
        if word in by_key or word in by_label:
            target = f"attr:{(by_key.get(word) or by_label[word]).key}"
        elif "phone" not in mapping and any(w == word or w in word for w in PHONE_WORDS):
            target = "phone"
        elif "name" not in mapping and (word in NAME_WORDS or word.endswith(" name") and "first" not in word):
            target = "name"
        elif word in TAG_WORDS:
            target = "tags"
        if target and target != "tags" and target in mapping:
            target = ""
        mapping.append(target)
    return mapping


def check_mapping(mapping: list[str], headers: list[str], definitions: list[AttributeDefinition]) -> list[str]:
    keys = {d.key for d in definitions}
    if len(mapping) != len(headers):
        raise ApplicationError("The mapping does not match the file's columns.", code="import_invalid_mapping")
    seen: set[str] = set()
    for target in mapping:
        if target in ("", "tags"):
            continue
        if target in ("phone", "name") or (target.startswith("attr:") and target[5:] in keys):
            if target in seen:
                label = "Phone number" if target == "phone" else "Name" if target == "name" else target[5:]
                raise ApplicationError(f"Two columns are mapped to “{label}”; choose one.",
                                       code="import_invalid_mapping")
            seen.add(target)
            continue
        raise ApplicationError(f"Unknown column target {target!r}.", code="import_invalid_mapping")
    if "phone" not in seen:
        raise ApplicationError("Choose the column that holds the phone numbers.", code="import_missing_phone")
    return mapping


# --- running -------------------------------------------------------------------------------

@dataclass
class _Parsed:
    row: int
    wa_id: str
    name: str
    tags: list[str]
    attributes: dict[str, Any]


@dataclass
class _Chunk:
    parsed: list[_Parsed] = field(default_factory=list)
    errors: list[list[Any]] = field(default_factory=list)
    lines: int = 0
    empty: int = 0
    duplicates: int = 0
    invalid: int = 0


class _Plan:
    """What each column means, resolved once."""

    def __init__(self, contact_import: ContactImport, definitions: dict[str, AttributeDefinition]) -> None:
        mapping = contact_import.mapping
        headers = contact_import.headers
        self.phone = mapping.index("phone")
        self.name = mapping.index("name") if "name" in mapping else None
        self.tags = [i for i, target in enumerate(mapping) if target == "tags"]
        self.attributes = [(i, definitions[target[5:]], headers[i]) for i, target in enumerate(mapping)
                           if target.startswith("attr:") and target[5:] in definitions]
        self.country = contact_import.default_country or None
        self.headers = headers

    def parse(self, number: int, cells: list[str], errors: list[list[Any]]) -> _Parsed | None:
        def cell(index: int) -> str:
            return cells[index].strip() if index < len(cells) else ""

        raw_phone = cell(self.phone)
        phone_header = self.headers[self.phone]
        if not raw_phone:
            errors.append([number, phone_header, "", "The phone number is missing."])
            return None
        try:
            wa_id = normalize_wa_id(raw_phone, default_region=self.country)
        except InvalidPhoneNumber:
            hint = "" if self.country else " (no default country was chosen, so it needs its country code)"
            errors.append([number, phone_header, raw_phone, f"“{raw_phone}” is not a valid phone number{hint}."])
            return None
        name = cell(self.name) if self.name is not None else ""
        if len(name) > MAX_NAME_LENGTH:
            errors.append([number, self.headers[self.name], name[:80],
                           f"The name is longer than {MAX_NAME_LENGTH} characters."])
            return None
        tags: list[str] = []
        for index in self.tags:
            for tag in TAG_SPLIT_RE.split(cell(index)):
                tag = tag.strip()
                if not tag:
                    continue
                if len(tag) > MAX_TAG_LENGTH:
                    errors.append([number, self.headers[index], tag[:80],
                                   f"The tag is longer than {MAX_TAG_LENGTH} characters."])
                    return None
                if tag not in tags:
                    tags.append(tag)
        attributes: dict[str, Any] = {}
        for index, definition, header in self.attributes:
            raw = cell(index)
            try:
                value = parse_value(definition.type, raw)
            except InvalidAttributeValue as exc:
                errors.append([number, header, raw, f"{definition.label}: {exc.message}"])
                return None
            if value is not None:
                attributes[definition.key] = value
        return _Parsed(row=number, wa_id=wa_id, name=name, tags=tags, attributes=attributes)


def run(contact_import: ContactImport) -> ContactImport:
    """Import the rows not yet processed (all of them on a first run)."""
    tenant_id = contact_import.tenant_id
    definitions = {d.key: d for d in AttributeDefinition.objects.for_tenant(tenant_id)}
    plan = _Plan(contact_import, definitions)
    seen: dict[str, int] = {}
    already = contact_import.processed_rows
    chunk = _Chunk()
    line = 0
    for number, cells in read_rows(contact_import):
        line += 1
        if line <= already:
            continue
        chunk.lines += 1
        if _blank(cells):
            chunk.empty += 1
        else:
            parsed = plan.parse(number, cells, chunk.errors)
            if parsed is None:
                chunk.invalid += 1
            elif parsed.wa_id in seen:
                chunk.duplicates += 1
                chunk.errors.append([number, plan.headers[plan.phone], cells[plan.phone].strip(),
                                     f"+{parsed.wa_id} already appears on row {seen[parsed.wa_id]}; this row was "
                                     "skipped."])
            else:
                seen[parsed.wa_id] = number
                chunk.parsed.append(parsed)
        if chunk.lines >= CHUNK_ROWS:
            _write_chunk(contact_import, chunk)
            chunk = _Chunk()
    _write_chunk(contact_import, chunk)
    ContactImport.objects.for_tenant(tenant_id).filter(pk=contact_import.pk).update(
        status=ContactImport.Status.COMPLETED, finished_at=timezone.now(), total_rows=F("processed_rows"))
    contact_import.refresh_from_db()
    return contact_import


def _update_rows(rows: list[tuple[int, str, dict[str, Any]]], now: Any) -> None:
    """Name and attributes of existing contacts, one ``executemany``."""
    if not rows:
        return
    connection = connections[router.db_for_write(Contact)]
    meta = Contact._meta
    name_f, attributes_f, updated_f = (meta.get_field(n) for n in ("name", "attributes", "updated_at"))
    quote = connection.ops.quote_name
    table, name_c, attributes_c, updated_c, pk_c = (quote(meta.db_table), quote(name_f.column),
                                                      quote(attributes_f.column), quote(updated_f.column),
                                                      quote(meta.pk.column))
    stamp = updated_f.get_db_prep_save(now, connection)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for start in range(0, len(rows), 5000):
                part = rows[start:start + 5000]
                values = ", ".join(["(%s::bigint, %s, %s::jsonb)"] * len(part))
                cursor.execute(
                    f"UPDATE {table} AS t SET {name_c} = v.name, {attributes_c} = v.attributes, {updated_c} = %s "
                    f"FROM (VALUES {values}) AS v(id, name, attributes) WHERE t.{pk_c} = v.id",
                    [stamp, *[value for pk, name, attributes in part
                              for value in (pk, name, json.dumps(attributes, ensure_ascii=False))]])
        else:
            cursor.executemany(
                f"UPDATE {table} SET {name_c} = %s, {attributes_c} = %s, {updated_c} = %s WHERE {pk_c} = %s",
                [(name, attributes_f.get_db_prep_save(attributes, connection), stamp, pk)
                 for pk, name, attributes in rows])


@transaction.atomic
def _write_chunk(contact_import: ContactImport, chunk: _Chunk) -> None:
    tenant_id = contact_import.tenant_id
    contacts = Contact.objects.for_tenant(tenant_id)
    update = contact_import.on_existing == ContactImport.OnExisting.UPDATE
    created = updated = skipped = 0
    if chunk.parsed:
        rows = {p.wa_id: p for p in chunk.parsed}
        existing = {wa_id: (pk, name, attributes) for pk, wa_id, name, attributes in
                    contacts.filter(wa_id__in=list(rows)).values_list("pk", "wa_id", "name", "attributes")}
        now = timezone.now()
        new = [p for wa_id, p in rows.items() if wa_id not in existing]
        insert_rows(Contact, [{"wa_id": p.wa_id, "name": p.name, "attributes": p.attributes} for p in new],
                    {"tenant_id": tenant_id, "created_at": now, "updated_at": now}, ignore_conflicts=True)
        created = len(new)
        ids = dict(contacts.filter(wa_id__in=[p.wa_id for p in new]).values_list("wa_id", "pk")) if new else {}
        changed: list[tuple[int, str, dict[str, Any]]] = []
        for wa_id, (pk, name, attributes) in existing.items():
            if not update:
                skipped += 1
                continue
            updated += 1
            ids[wa_id] = pk
            p = rows[wa_id]
            new_name = p.name or name
            new_attributes = {**(attributes or {}), **p.attributes}
            if new_name != name or new_attributes != attributes:
                changed.append((pk, new_name, new_attributes))
        _update_rows(changed, now)
        names = {tag for wa_id, p in rows.items() if wa_id in ids for tag in p.tags}
        if names:
            from .services import tags_ensure

            by_name = tags_ensure(tenant=contact_import.tenant, names=sorted(names))
            insert_rows(ContactTag, [{"contact_id": ids[wa_id], "tag_id": by_name[tag].pk}
                                     for wa_id, p in rows.items() if wa_id in ids for tag in p.tags],
                        {"tenant_id": tenant_id, "created_at": now, "updated_at": now}, ignore_conflicts=True)
    kept = contact_import.errors
    room = max(0, ERRORS_KEPT - len(kept))
    fields: dict[str, Any] = {
        "processed_rows": F("processed_rows") + chunk.lines,
        "created_count": F("created_count") + created,
        "updated_count": F("updated_count") + updated,
        "skipped_count": F("skipped_count") + skipped,
        "duplicate_count": F("duplicate_count") + chunk.duplicates,
        "empty_count": F("empty_count") + chunk.empty,
        "error_count": F("error_count") + chunk.invalid,
        "updated_at": timezone.now(),  # the heartbeat the sweeper reads
    }
    if chunk.errors and room:
        kept = kept + chunk.errors[:room]
        contact_import.errors = kept
        fields["errors"] = kept
    ContactImport.objects.for_tenant(tenant_id).filter(pk=contact_import.pk).update(**fields)
