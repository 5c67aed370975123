"""A small Sphinx extension that fixes what a reader's browser console reports on our pages.

Loaded through ``_config.yml`` (``sphinx: extra_extensions``). It

* removes duplicate ``<script>`` entries: sphinx-thebe registers its inline configuration
  (``const THEBE_JS_URL = ...``) once per ``env-before-read-docs`` event, and a second copy
  is a ``SyntaxError`` ("Identifier 'THEBE_JS_URL' has already been declared");
* gives MathJax 3 the one MathJax 2 call the jupyter-widgets HTML manager makes when it
  renders a widget label (``MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])``), which
  otherwise throws ``TypeError: Cannot read properties of undefined (reading 'Queue')``;
* tells RequireJS where the widget modules live (``hvae_requirejs_paths``), so the widget
  manager finds its fonts next to its script (the CDN by default, ``_assets/`` in an
  offline build) instead of requesting them under the page's folder;
* sets the theme's default colour mode to ``light`` (an empty mode is logged as an error by
  pydata-sphinx-theme);
* lets the API page read the library's field lists as written: ``name : description`` in a
  ``Parameters`` or ``Attributes`` section (numpy style would take the description for a type),
  see :func:`split_field_descriptions`;
* resolves cross-references to names that a package re-exports
  (``:func:`hvae_lib.train.train``` → ``hvae_lib.train.loop.train``, where the API page
  documents it): see :func:`canonical_name`.

Used in: every page of the book (tests/test_browser.py checks the console).
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Inline script run before the widget manager. It maps MathJax 2's ``Hub.Queue`` to MathJax 3's
#: ``typesetPromise`` as soon as MathJax 3 has loaded (deferred scripts run before
#: ``DOMContentLoaded``).
MATHJAX2_COMPAT = """(function () {
  function shim() {
    var M = window.MathJax;
    if (M && M.version && String(M.version).charAt(0) === "3" && !M.Hub) {
      M.Hub = {Queue: function (job) {
        var el = job && job[2];
        if (el && M.typesetPromise) { M.typesetPromise([el]).catch(function () {}); }
      }};
    }
  }
  document.addEventListener("DOMContentLoaded", shim);
  window.addEventListener("load", shim);
})();"""


def _script_key(js: Any) -> tuple[Any, ...]:
    filename = getattr(js, "filename", js) or None  # inline scripts come as None or ""
    attributes = getattr(js, "attributes", {}) or {}
    return (str(filename), tuple(sorted((str(k), str(v)) for k, v in attributes.items())))


def dedupe_scripts(
    app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """``html-page-context`` handler: keep the first of identical script entries."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for js in scripts:
        key = _script_key(js)
        if key not in seen:
            seen.add(key)
            unique.append(js)
    scripts[:] = unique


#: Default RequireJS ``paths`` for the widget modules (the CDN build).
CDN_REQUIREJS_PATHS = {"@jupyter-widgets": "https://cdn.jsdelivr.net/npm/@jupyter-widgets"}


def _config_inited(app: Any, config: Any) -> None:
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "light")
    config.html_context = context
    paths = dict(config.hvae_requirejs_paths or {})
    if paths:
        # a global ``require`` object defined before require.js loads is RequireJS's configuration
        app.add_js_file(
            None, body="var require = " + json.dumps({"paths": paths}) + ";", priority=110
        )


#: numpy-style sections whose fields the library writes as ``name : description``
FIELD_SECTIONS = ("Parameters", "Other Parameters", "Attributes", "Keyword Arguments")
_FIELD = re.compile(r"^(\*{0,2}[A-Za-z_][\w]*(?:\s*,\s*\*{0,2}[A-Za-z_][\w]*)*)\s+:\s+(\S.*)$")


def _is_header(lines: list[str], i: int) -> bool:
    nxt = lines[i + 1].strip() if i + 1 < len(lines) else ""
    return bool(lines[i].strip()) and len(nxt) >= 3 and set(nxt) == {"-"}


def split_field_descriptions(lines: list[str]) -> list[str]:
    """Rewrite ``name : description`` fields of the numpy sections in :data:`FIELD_SECTIONS` as
    ``name`` with the description on the next, indented line, so napoleon shows a name and its
    description instead of a "type" made of the description's first line. A ``Used in:`` line,
    or a paragraph after a blank line in a field section, closes the section (two blank lines
    before it), so it is not read as a field.
    Other sections and lines are returned unchanged.
    """
    out: list[str] = []
    section: str | None = None
    base = 0
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if _is_header(lines, i):
            section = stripped
            base = indent
            out += [line, lines[i + 1]]
            i += 2
            continue
        nxt = lines[i + 1] if i + 1 < len(lines) else ""
        more_indented = bool(nxt.strip()) and len(nxt) - len(nxt.lstrip()) > indent
        prose_after_fields = (
            section in FIELD_SECTIONS
            and stripped
            and indent == base
            and out
            and not out[-1].strip()
            and not _FIELD.match(stripped)
            and not more_indented
        )
        if section is not None and (stripped.startswith("Used in") or prose_after_fields):
            while out and not out[-1].strip():
                out.pop()
            out += ["", "", line]
            section = None
        elif (
            section in FIELD_SECTIONS
            and stripped
            and indent == base
            and (m := _FIELD.match(stripped))
        ):
            out += [" " * base + m.group(1), " " * (base + 4) + m.group(2)]
        else:
            out.append(line)
        i += 1
    return out


def canonical_name(target: str) -> str | None:
    """The defining module's dotted name of the object that ``target`` names, e.g.
    ``"hvae_lib.train.train"`` → ``"hvae_lib.train.loop.train"``; ``None`` when ``target`` does
    not import or names no class, function or module."""
    import importlib

    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        if hasattr(obj, "__qualname__") and hasattr(obj, "__module__"):
            return f"{obj.__module__}.{obj.__qualname__}"
        name = getattr(obj, "__name__", None)
        return name if isinstance(name, str) and cut == len(parts) else None
    return None


def _missing_reference(app: Any, env: Any, node: Any, contnode: Any) -> Any:
    """``missing-reference`` handler: retry a Python reference under its canonical name."""
    if node.get("refdomain") != "py":
        return None
    target = str(node.get("reftarget", ""))
    module = node.get("py:module") or ""
    candidates = [target] + (
        [f"{module}.{target}"] if module and not target.startswith("hvae_lib") else []
    )
    domain = env.get_domain("py")
    for candidate in candidates:
        if not candidate.startswith("hvae_lib"):
            continue
        canonical = canonical_name(candidate)
        if canonical and canonical != target:
            found = domain.resolve_xref(
                env, node["refdoc"], app.builder, node["reftype"], canonical, node, contnode
            )
            if found is not None:
                return found
    # a module-level value (e.g. a type alias) documented once: the unique entry with that name
    tail = "." + target.rsplit(".", 1)[-1]
    matches = [
        name for name in domain.objects if name.endswith(tail) and name.startswith("hvae_lib")
    ]
    if len(matches) == 1:
        return domain.resolve_xref(
            env, node["refdoc"], app.builder, node["reftype"], matches[0], node, contnode
        )
    return None


def _process_docstring(
    app: Any, what: str, name: str, obj: Any, options: Any, lines: list[str]
) -> None:
    """``autodoc-process-docstring`` handler (before napoleon's): :func:`split_field_descriptions`."""
    lines[:] = split_field_descriptions(lines)


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("hvae_requirejs_paths", CDN_REQUIREJS_PATHS, "html")
    app.connect("config-inited", _config_inited)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.add_js_file(None, body=MATHJAX2_COMPAT, priority=100)
    app.setup_extension("sphinx.ext.autodoc")  # registers the event connected below
    app.connect(
        "autodoc-process-docstring", _process_docstring, priority=100
    )  # napoleon runs at 500
    app.connect("missing-reference", _missing_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
