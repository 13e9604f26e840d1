"""The one redaction step: Presidio pattern recognizers + our address / date-of-birth recognizers."""

from __future__ import annotations

import pytest

from diffprompt.redact import default_redactor, redact, redact_messages

PLANTED = {
    "email": "jane.roe+travel@example.co.uk",
    "us phone": "+1 (415) 555-0132",
    "uk phone": "+44 20 7946 0958",
    "de phone": "+49 30 901820",
    "fr phone": "+33 1 42 68 53 00",
    "in phone": "+91 98765 43210",
    "visa": "4111 1111 1111 1111",
    "mastercard": "5500-0000-0000-0004",
    "iban de": "DE89 3704 0044 0532 0130 00",
    "iban gb": "GB82WEST12345698765432",
    "ssn": "536-22-8901",
    "ipv4": "192.168.17.23",
    "ipv6": "2001:db8::8a2e:370:7334",
    "street": "1234 Elm Street",
    "dob": "March 3, 1984",
}


def test_every_planted_value_is_redacted():
    text = (
        f"Hi, I'm {PLANTED['email']}; call {PLANTED['us phone']}, {PLANTED['uk phone']}, {PLANTED['de phone']},"
        f" {PLANTED['fr phone']} or {PLANTED['in phone']}. Cards {PLANTED['visa']} and {PLANTED['mastercard']}."
        f" IBANs {PLANTED['iban de']} / {PLANTED['iban gb']}. SSN {PLANTED['ssn']}. From {PLANTED['ipv4']} and"
        f" {PLANTED['ipv6']}. I live at {PLANTED['street']}, Apt 5. I was born on {PLANTED['dob']}."
    )
    out = redact(text)
    for name, value in PLANTED.items():
        assert value not in out, f"{name} leaked: {out}"
    for placeholder in ("[EMAIL]", "[PHONE]", "[CARD]", "[IBAN]", "[IP]", "[ADDRESS]", "[DOB]"):
        assert placeholder in out


def test_json_fields_of_tool_results():
    out = redact('{"address1": "42 Wallaby Way", "zip": "94110", "dob": "1984-04-07", "user_id": "mia_li_3668"}')
    assert "Wallaby" not in out and "94110" not in out and "1984-04-07" not in out
    assert "mia_li_3668" in out  # ids are not PII placeholders


@pytest.mark.parametrize(
    "text",
    [
        "flight HAT001 on 2024-05-15, reservation ABC123, user mia_li_3668, total $250",
        "order #W2378156 has 3 items; refund 120.50 to gift card",
    ],
)
def test_business_details_survive(text):
    assert redact(text) == text


def test_messages_contents_and_tool_arguments():
    msgs = [
        {"role": "user", "content": "my email is a.b@example.com"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "1",
                    "type": "function",
                    "function": {"name": "find", "arguments": '{"email": "a.b@example.com"}'},
                }
            ],
        },
    ]
    out = redact_messages(msgs)
    assert "a.b@example.com" not in str(out)
    assert out[1]["tool_calls"][0]["function"]["name"] == "find"
    assert msgs[0]["content"] == "my email is a.b@example.com"  # input untouched


def test_findings_name_entities():
    kinds = {k for k, _, _ in default_redactor().findings("mail x@example.org from 10.0.0.1")}
    assert kinds == {"EMAIL_ADDRESS", "IP_ADDRESS"}
