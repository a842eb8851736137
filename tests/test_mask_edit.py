import pytest

from mae_core.classroom.mask_edit import GENERATED, PAINTED, MaskEditor
from mae_core.masking import make_mask


def _editor():
    e = MaskEditor(grid=7)
    e.generate("random", 0.75, 0)
    return e


def test_generated_mask_follows_settings_and_a_painted_one_is_kept():
    e = _editor()
    assert e.source == GENERATED and e.n_hidden == 37
    assert e.mask == make_mask("random", 1, 7, 0.75, seed=0)[0].to(int).tolist()
    assert e.settings_changed("random", 0.5, 0) and e.n_hidden == 49 - int(49 * 0.5)
    # the case: clear, paint two columns (14 of 49), touch the ratio slider
    e.fill(0)
    painted = [1 if c in (0, 1) else 0 for r in range(7) for c in range(7)]
    e.paint(painted)
    assert e.settings_changed("random", 0.82, 0) is False
    assert e.mask == painted and e.source == PAINTED and e.n_hidden == 14
    assert "Painted by hand: 14 of 49" in e.describe() and "Generate" in e.describe()
    e.generate("grid", 0.75, 0)  # asked for explicitly
    assert e.source == GENERATED and "Grid mask at ratio 0.75" in e.describe() and "seed" not in e.describe()


def test_undo_redo_restore_mask_and_source_over_twenty_steps():
    e = _editor()
    history = [(list(e.mask), e.source)]
    for i in range(25):  # 25 strokes, each toggling one more cell
        m = list(e.mask)
        m[i] = 1 - m[i]
        assert e.paint(m)
        history.append((list(e.mask), e.source))
    for k in range(25):
        assert e.undo()
        assert (e.mask, e.source) == history[-2 - k]
    assert e.source == GENERATED and e.recipe.ratio == 0.75  # back to the generated start, recipe included
    assert not e.undo()  # nothing older
    for k in range(25):
        assert e.redo()
    assert (e.mask, e.source) == history[-1] and not e.redo()
    e.undo()
    e.invert()  # a new change after an undo drops the redo branch
    assert not e.redo_stack


def test_no_op_changes_make_no_undo_step_and_history_is_bounded():
    e = _editor()
    assert not e.paint(list(e.mask)) or e.source == PAINTED  # same cells, new source: one step
    n = len(e.undo_stack)
    assert not e.paint(list(e.mask)) and len(e.undo_stack) == n
    e.limit = 20
    for i in range(30):
        e.fill(i % 2)
    assert len(e.undo_stack) == 20


def test_wrong_mask_length_is_a_clear_error():
    with pytest.raises(ValueError, match="7x7 grid has 49 cells, got 3"):
        _editor().paint([1, 0, 1])


def test_a_ratio_that_rounds_to_whole_patches_says_the_share_it_hid():
    """Seen: 'Ratio 0.90' beside '(92%)' in the painter: 45 of 49 patches is 92%. The description says why."""
    e = MaskEditor(grid=7)
    e.generate("random", 0.9, 0)
    assert e.describe() == ("Generated: Random mask at ratio 0.90, seed 0: 45 of 49 patches hidden "
                            "(92%: the ratio rounds to whole patches)")
    e8 = MaskEditor(grid=8)
    e8.generate("random", 0.75, 0)
    assert e8.describe().endswith("48 of 64 patches hidden")             # exact: nothing to explain
