import pytest

from apps.core.phone import InvalidPhoneNumber, _normalized, format_display, normalize_wa_id


@pytest.mark.parametrize("raw,expected", [
    ("+1 (650) 555-1234", "16505551234"),
    ("16505551234", "16505551234"),
    ("0091 98765 43210", "919876543210"),
    ("+91-98765-43210", "919876543210"),
    (15550001111, "15550001111"),
    ("+44 20 7946 0958", "442079460958"),
])
def test_normalizes_to_e164_digits(raw, expected):
    assert normalize_wa_id(raw) == expected


def test_default_region_reads_national_numbers():
    assert normalize_wa_id("098765 43210", default_region="IN") == "919876543210"
    assert normalize_wa_id("(650) 555-1234", default_region="us") == "16505551234"


@pytest.mark.parametrize("raw", ["", "   ", "abc", "+1 23", "12", None])
def test_rejects_impossible_numbers_with_a_clear_error(raw):
    with pytest.raises(InvalidPhoneNumber) as info:
        normalize_wa_id(raw)
    assert info.value.code == "invalid_recipient"


def test_format_display():
    assert format_display("16505551234") == "+1 650-555-1234"


def test_parsing_is_remembered_and_a_refusal_is_not():
    _normalized.cache_clear()
    assert normalize_wa_id("+1 (415) 555-0100") == normalize_wa_id("+1 (415) 555-0100") == "14155550100"
    assert _normalized.cache_info().hits == 1
    for _ in range(2):
        with pytest.raises(InvalidPhoneNumber):
            normalize_wa_id("12")
    assert _normalized.cache_info().currsize == 1
