"""One exception family. The CLI prints these without a traceback and exits non-zero;
anything else escaping is a bug and keeps its traceback."""


class CotDistillError(Exception):
    """Base class: a problem the user can fix (bad config, bad data, dead endpoint)."""


class ConfigError(CotDistillError):
    """An invalid config value, key or override."""


class DataError(CotDistillError):
    """A malformed data file, missing field or empty data set; the message names file, line and field."""


class TeacherError(CotDistillError):
    """A teacher backend failed in a way retrying will not fix."""


class CacheError(CotDistillError):
    """The persistent completion cache is unreadable or inconsistent."""


def field_problems(e, unknown: str, where=lambda loc: loc) -> str:
    """A pydantic ValidationError as one line, a problem per field: `where(dotted location)`, then
    `unknown` for a key the model does not have, else pydantic's message."""
    return "; ".join(f"{where('.'.join(map(str, x['loc'])))}: {unknown if x['type'] == 'extra_forbidden' else x['msg']}"
                     for x in e.errors())


class ModelError(CotDistillError):
    """A student model or tokenizer could not be loaded or built."""
