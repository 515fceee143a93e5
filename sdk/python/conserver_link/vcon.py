"""The vCon as a link sees it: the JSON document as a dict, keys in their order,
with helpers for what links usually touch. Tags and analysis are written in the
Python conserver's format, so a Python link's output matches a Rust link's."""

import json


def _compact(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _is_tags(entry):
    return isinstance(entry, dict) and (entry.get("purpose") == "tags" or entry.get("type") == "tags")


def _tag_list(body):
    """The tag strings of a tags body: a JSON-encoded list, or a native one."""
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return []
    if not isinstance(body, list):
        return []
    return [item if isinstance(item, str) else _compact(item) for item in body]


class Vcon:
    """A vCon document. ``vcon.doc`` is the dict itself; change it freely."""

    def __init__(self, doc):
        if not isinstance(doc, dict):
            raise ValueError("a vCon must be a JSON object")
        self.doc = doc

    @classmethod
    def from_json(cls, text):
        return cls(json.loads(text))

    def to_json(self):
        return _compact(self.doc)

    def __getitem__(self, key):
        return self.doc[key]

    def __setitem__(self, key, value):
        self.doc[key] = value

    def get(self, key, default=None):
        return self.doc.get(key, default)

    @property
    def uuid(self):
        return self.doc.get("uuid")

    @property
    def parties(self):
        return self.doc.get("parties") or []

    @property
    def dialog(self):
        return self.doc.get("dialog") or []

    @property
    def analysis(self):
        return self.doc.get("analysis") or []

    @property
    def attachments(self):
        return self.doc.get("attachments") or []

    def _array(self, key):
        """The list under ``key``, created empty when absent or null."""
        value = self.doc.get(key)
        if value is None:
            value = []
            self.doc[key] = value
        if not isinstance(value, list):
            raise ValueError(f"`{key}` must be an array")
        return value

    def add_tag(self, name, value):
        """Add ``name:value`` to the tags attachment (created when absent): a
        JSON-encoded list of strings with ``encoding: "json"``, as the Python
        conserver writes it. Tags are appended without de-duplication."""
        attachments = self._array("attachments")
        entry = next((a for a in attachments if _is_tags(a)), None)
        if entry is None:
            entry = {"purpose": "tags", "body": "[]", "encoding": "json"}
            attachments.append(entry)
        tags = _tag_list(entry.get("body"))
        tags.append(f"{name}:{value}")
        entry["body"] = json.dumps(tags)
        entry["encoding"] = "json"

    def tags(self):
        """Every tag as a ``(name, value)`` pair."""
        entry = next((a for a in self.attachments if _is_tags(a)), None)
        if entry is None:
            return []
        pairs = []
        for tag in _tag_list(entry.get("body")):
            name, _, value = tag.partition(":")
            pairs.append((name, value))
        return pairs

    def get_tag(self, name):
        """The value of the first tag called ``name``, or ``None``."""
        return next((value for tag, value in self.tags() if tag == name), None)

    def add_analysis(self, type, vendor, body, dialog=None, **extra):
        """Append an analysis entry. A dict or list body is stored as a JSON
        string with ``encoding: "json"``, as the Python conserver does."""
        entry = {"type": type}
        if dialog is not None:
            entry["dialog"] = dialog
        entry["vendor"] = vendor
        if isinstance(body, (dict, list)):
            entry["body"] = json.dumps(body)
            entry["encoding"] = "json"
        else:
            entry["body"] = body
        entry.update(extra)
        self._array("analysis").append(entry)

    def add_attachment(self, purpose, body, encoding="none", **extra):
        """Append an attachment entry."""
        entry = {"purpose": purpose, "body": body, "encoding": encoding}
        entry.update(extra)
        self._array("attachments").append(entry)
