"""The page cache: bounded memory, keyset when possible, offset to jump, exact ends."""

from __future__ import annotations

from usermgmt.tui.paging import Fetch, PageCache


def test_first_page_then_keyset_then_a_jump_from_the_nearest_cursor():
    cache = PageCache(page_size=10)
    assert cache.plan(0) == Fetch(0, None)
    assert cache.plan(3) == Fetch(3, None, 30)  # nothing known yet: skip from the top
    cache.store(0, list(range(10)), "c1")
    assert cache.plan(1) == Fetch(1, "c1")  # the next page by keyset cursor
    assert cache.plan(7) == Fetch(7, "c1", 60)  # a jump: skip from the nearest cursor
    cache.store(4, list(range(40, 50)), "c5")
    assert cache.plan(7) == Fetch(7, "c5", 20)


def test_pages_near_the_end_are_fetched_backwards_when_the_order_allows():
    cache = PageCache(page_size=10, can_reverse=True)
    cache.set_total(1005)
    assert cache.plan(100) == Fetch(100, None, 0, reverse=True, limit=5)  # the last 5 rows
    assert cache.plan(98) == Fetch(98, None, 15, reverse=True, limit=10)
    assert cache.plan(3) == Fetch(3, None, 30)  # nearer the top: forwards
    cache.store(100, list(range(1000, 1005)), None, reverse=True)
    assert 101 not in cache.cursors and cache.height == 1005
    assert PageCache(page_size=10, can_reverse=False, total=1005).plan(100).reverse is False


def test_no_offset_source_only_pages_on_from_known_cursors():
    cache = PageCache(page_size=10, can_offset=False)
    cache.store(0, list(range(10)), "s90")
    assert cache.plan(1) == Fetch(1, "s90")
    assert cache.plan(5) is None
    assert cache.height == 11  # ten rows and a loading row: the end is unknown


def test_memory_is_bounded_whatever_is_visited():
    cache = PageCache(page_size=10, max_pages=3, max_cursors=5)
    for page in range(100):
        cache.store(page, list(range(page * 10, page * 10 + 10)), f"c{page + 1}")
    assert len(cache.pages) == 3
    assert len(cache.cursors) == 5
    assert cache.row(995) == 995 and cache.row(5) is None


def test_least_recently_read_page_goes_first():
    cache = PageCache(page_size=10, max_pages=2)
    cache.store(0, list(range(10)), "c1")
    cache.store(1, list(range(10, 20)), "c2")
    assert cache.row(3) == 3  # page 0 used again
    cache.store(2, list(range(20, 30)), "c3")
    assert cache.has_page(0) and not cache.has_page(1)


def test_count_gives_the_height_and_the_last_page_the_exact_end():
    cache = PageCache(page_size=10)
    cache.set_total(95)
    assert cache.height == 95 and cache.exact
    cache.store(9, list(range(90, 93)), None)  # three rows were deleted meanwhile
    assert cache.height == 93


def test_an_empty_page_past_a_stale_count_only_lowers_the_end():
    cache = PageCache(page_size=10)
    cache.set_total(100)
    cache.store(8, list(range(80, 85)), None)
    cache.store(9, [], None)
    assert cache.height == 85


def test_rows_added_after_the_end_was_seen_reopen_it():
    cache = PageCache(page_size=10, can_offset=False)
    cache.store(0, list(range(10)), None)
    assert cache.height == 10
    cache.store(0, list(range(10)), "more")
    assert cache.height == 11


def test_invalidated_rows_stay_visible_until_fetched_again():
    cache = PageCache(page_size=10)
    cache.store(0, list(range(10)), "c1")
    cache.set_total(50)
    cache.invalidate()
    assert cache.row(3) == 3 and not cache.has_page(0) and cache.height == 50
    # Rows may have come or gone above page 1: it is fetched by its offset, not after
    # the old cursor (which would skip or repeat rows at its border with page 0).
    assert cache.plan(1) == Fetch(1, None, 10)
    cache.store(0, list(range(100, 110)), "c1")
    assert cache.row(3) == 103 and cache.has_page(0)
    assert cache.plan(1) == Fetch(1, "c1")


def test_a_source_without_offsets_keeps_its_cursors_when_invalidated():
    cache = PageCache(page_size=10, can_offset=False)
    cache.store(0, list(range(10)), "c1")
    cache.invalidate()
    assert cache.plan(1) == Fetch(1, "c1")


def test_pages_for_clips_to_the_height():
    cache = PageCache(page_size=10)
    cache.set_total(25)
    assert list(cache.pages_for(-5, 100)) == [0, 1, 2]
    assert list(cache.pages_for(30, 40)) == []


def test_pages_to_keep_are_not_evicted():
    cache = PageCache(page_size=10, max_pages=2)
    cache.store(0, list(range(10)), "c1")
    cache.store(1, list(range(10, 20)), "c2")
    cache.store(2, list(range(20, 30)), "c3", keep=frozenset({0, 2}))
    assert set(cache.pages) == {0, 2}
