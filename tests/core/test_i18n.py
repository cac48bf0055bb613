"""Django's own messages come out in Chinese when the language is zh-hans."""

from django import forms
from django.utils import translation


class NameForm(forms.Form):
    name = forms.CharField()


def test_required_field_message_in_chinese():
    with translation.override("zh-hans"):
        form = NameForm(data={})
        assert not form.is_valid()
        assert form.errors["name"] == ["此字段为必填项。"]


def test_required_field_message_in_english():
    with translation.override("en"):
        assert NameForm(data={}).errors["name"] == ["This field is required."]
