from apps.campaigns.variables import (
    mapping_problems,
    resolve_variables,
    send_components,
    template_content,
    template_variables,
)
from apps.contacts.models import Contact
from apps.message_templates.rendering import parameter_problems


def test_positional_variables_from_name_attribute_literal_and_fallback(template):
    contact = Contact(wa_id="14155550100", name="Ana Lima", attributes={"city": "Porto"})
    mapping = {"1": {"source": "first_name"}, "2": {"source": "attribute", "key": "city"}}
    assert template_variables(template=template) == ["1", "2"]
    assert resolve_variables(template=template, mapping=mapping, contact=contact) == ({"1": "Ana", "2": "Porto"}, [])
    nameless = Contact(wa_id="14155550101", attributes={})
    mapping["1"]["fallback"] = "friend"
    values, missing = resolve_variables(template=template, mapping=mapping, contact=nameless)
    assert values == {"1": "friend"} and missing == ["2"]
    literal = {"1": {"source": "wa_id"}, "2": {"source": "literal", "value": "Shoes\n\tand   more      stuff"}}
    values, _ = resolve_variables(template=template, mapping=literal, contact=nameless)
    assert values == {"1": "+14155550101", "2": "Shoes and   more stuff"}  # no new lines, tabs or 5 spaces


def test_given_values_win_over_the_mapping(template):
    values, missing = resolve_variables(template=template, mapping={"1": {"source": "name"}}, contact=None,
                                        given={"1": "Zé", "2": "Hats"})
    assert values == {"1": "Zé", "2": "Hats"} and missing == []


def test_named_template_with_header_and_button_builds_a_valid_send(named_template):
    names = template_variables(template=named_template)
    assert names == ["first_name", "time", "header.city", "button.0"]
    values = {"first_name": "Ana", "time": "3 PM", "header.city": "Lisbon", "button.0": "abc"}
    components = send_components(template=named_template, values=values)
    assert parameter_problems(stored=named_template.components, parameter_format="named",
                              send_components=components) == []
    content, body = template_content(template=named_template, values=values)
    assert body == "Hi Ana, see you at 3 PM." and content["language"] == {"code": "en_US"}


def test_mapping_problems_name_every_uncovered_variable(template):
    problems = mapping_problems(template=template, mapping={"1": {"source": "attribute"}})
    assert len(problems) == 2 and "attribute" in problems[0] and "{{2}}" in problems[1]
    assert mapping_problems(template=template, mapping={"1": {"source": "name"}, "2": "literal text"}) == []
