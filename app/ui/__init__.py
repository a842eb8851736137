"""What the pages share, by role: ``text`` (what a visitor or a file wrote is shown as text; errors), ``session``
(presenter mode, the visitor, the settings each page keeps across pages, the warm-up), ``caches`` (models and
images shared by every session), ``pickers`` (the sidebar's model and image), ``scenes`` (a page's state in the
address bar), ``painter`` (the patch painters) and ``attention`` (the attention view). UI only: the work is
mae_core's."""
