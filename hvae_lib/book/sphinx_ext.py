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
  pydata-sphinx-theme).

Used in: every page of the book (tests/test_browser.py checks the console).
"""
from __future__ import annotations

import json
from typing import Any

#: Inline script run before the widget manager: maps MathJax 2's ``Hub.Queue`` to MathJax 3's
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
    filename = getattr(js, "filename", js) or None   # inline scripts come as None or ""
    attributes = getattr(js, "attributes", {}) or {}
    return (str(filename), tuple(sorted((str(k), str(v)) for k, v in attributes.items())))


def dedupe_scripts(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
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
        app.add_js_file(None, body="var require = " + json.dumps({"paths": paths}) + ";", priority=110)


def setup(app: Any) -> dict[str, Any]:
    app.add_config_value("hvae_requirejs_paths", CDN_REQUIREJS_PATHS, "html")
    app.connect("config-inited", _config_inited)
    app.connect("html-page-context", dedupe_scripts, priority=900)
    app.add_js_file(None, body=MATHJAX2_COMPAT, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
