"""A Sphinx extension that writes each script of a page once.

sphinx-thebe and sphinx-togglebutton add their inline configuration scripts once per build
phase (once with no file name, once with an empty one), so every page declared
``const THEBE_JS_URL`` twice and the browser reported "Identifier 'THEBE_JS_URL' has already
been declared". Repeats (same file, same attributes and body) are dropped as the page is
rendered.
"""

from __future__ import annotations


def _drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    seen, kept = set(), []
    for script in context.get("script_files", []):
        name = getattr(script, "filename", str(script)) or ""  # None and "" are the same
        key = (name, tuple(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(script)
    context["script_files"][:] = kept  # the builder's own list, in place


def setup(app):
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)  # after the others
    return {"parallel_read_safe": True, "parallel_write_safe": True}
