"""The classroom server: what a visitor may do (``policy``), weight uploads and downloads (``uploads``, ``zoo``),
training runs shared by a class (``worker``), lesson scenes in a link (``scenes``), mask edits with undo
(``mask_edit``), the guided lesson's logic (``lesson``) and the glossary (``glossary``). Passes its limits to the
core library; the core library never imports it."""
