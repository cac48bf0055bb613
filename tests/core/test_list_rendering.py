"""Forms write select and input widgets, list pages some cells, in Python for speed
(``FastFormRenderer`` in kehu/core/forms.py, ``register_cell_renderer``); the templates stay
the reference. These tests hold the Python twins to the templates' exact markup, so a change
to one cannot silently drift from the other.
"""

import datetime
from decimal import Decimal

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone, translation

from kehu.core.forms import BootstrapFormRenderer, FastFormRenderer
from kehu.core.views import KehuListView, _cell_renderers
from kehu.sales.models import ContractStatus
from tests.customers.factories import CustomerFactory
from tests.sales.factories import contract_for


def _list_views():
    def walk(patterns, prefix=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                yield from walk(pattern.url_patterns, prefix + str(pattern.pattern))
            elif isinstance(pattern, URLPattern):
                view_class = getattr(pattern.callback, "view_class", None)
                if (
                    view_class
                    and issubclass(view_class, KehuListView)
                    and view_class.filterset_class is not None
                    and not pattern.pattern.converters
                ):
                    yield prefix + str(pattern.pattern), view_class

    return sorted(set(walk(get_resolver().url_patterns)), key=lambda item: item[0])


def _widgets(form, renderer) -> list[str]:
    form.renderer = renderer
    return [str(bound.as_widget()) for bound in form]


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_fast_filter_widgets_equal_the_templates(org, language):
    CustomerFactory(owner=org.sales1)
    views = _list_views()
    assert len(views) >= 10
    factory = RequestFactory()
    with translation.override(language):
        for path, view_class in views:
            for query in ({}, None):
                request = factory.get("/" + path, query or {})
                request.user = org.admin
                view = view_class()
                view.setup(request)
                view.get_queryset()
                form = view.filterset.form
                if query is None:
                    # Bound to a value per field: "selected" and value attributes rendered.
                    data = {}
                    for bound in form:
                        # (``choices or []`` would ask django-filter's lazy choices their len)
                        choices = getattr(bound.field, "choices", None)
                        if choices is None:
                            choices = []
                        values = [str(v) for v, _label in choices if str(v)]
                        data[bound.name] = values[-1] if values else 'x<&">'
                    request = factory.get("/" + path, data)
                    request.user = org.admin
                    view.setup(request)
                    view.get_queryset()
                    form = view.filterset.form
                assert _widgets(form, FastFormRenderer()) == _widgets(
                    form, BootstrapFormRenderer()
                ), path


def _render(template: str, obj, value) -> str:
    return render_to_string(template, {"object": obj, "value": value}).strip()


def test_cell_twins_equal_their_templates(org):
    contract = contract_for(org.sales1, amount="12345.6")
    customer = contract.customer
    now = timezone.now()
    dates = [None, "", datetime.date(2026, 3, 1), now, "<b>&</b>"]
    values = {
        "sales/_cell_number.html": ["HT-2026-000001", "<b>&</b>"],
        "sales/_cell_status.html": [None],
        "sales/_cell_money.html": [Decimal("0"), Decimal("1234567.8"), Decimal("-5.05")],
        "sales/_cell_date.html": dates,
        "sales/_cell_nowrap.html": dates,
        "customers/_cell_next_followup.html": [
            None,
            now,
            now - datetime.timedelta(days=3),
            now + datetime.timedelta(days=3),
        ],
    }
    assert set(_cell_renderers) == set(values)  # a new twin needs its cases here
    for template, twin in _cell_renderers.items():
        obj = customer if template.startswith("customers/") else contract
        statuses = ContractStatus.values if obj is contract else [None]
        for status in statuses:
            if status is not None:
                contract.status = status
            for value in values[template]:
                html = twin(obj, value)
                if html is None:
                    continue  # the twin leaves this value to the template
                assert str(html).strip() == _render(template, obj, value), (template, value)


def test_model_selects_read_their_options_in_one_plain_query(org):
    """The options equal Django's and django-filter's own iterators' (empty and "null"
    choices included), read without a server-side cursor."""
    from django import forms
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    CustomerFactory(owner=org.sales1)
    checked = 0
    for path, view_class in _list_views():
        request = RequestFactory().get("/" + path)
        request.user = org.admin
        view = view_class()
        view.setup(request)
        view.get_queryset()
        for bound in view.filterset.form:
            field = bound.field
            if not isinstance(field, forms.ModelChoiceField):
                continue
            with CaptureQueriesContext(connection) as queries:
                options = [(str(value), str(label)) for value, label in field.widget.choices]
            assert not [q for q in queries if q["sql"].startswith("DECLARE")], path
            own = type(field).iterator(field)  # the field class's own iterator
            assert options == [(str(value), str(label)) for value, label in own], path
            checked += 1
    assert checked >= 10


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_fast_widgets_of_model_forms_equal_the_templates(org, language):
    from kehu.customers.forms import (
        ContactForm,
        CustomerForm,
        FollowUpForm,
        OpportunityForm,
        TransferForm,
    )

    customer = CustomerFactory(owner=org.sales1)
    with translation.override(language):
        forms_ = [
            CustomerForm(actor=org.sales1),
            CustomerForm(instance=customer, actor=org.sales1),
            CustomerForm({"name": 'x<&">', "phone": "bad"}, actor=org.sales1),
            ContactForm(prefix="contact"),
            FollowUpForm(customer=customer, prefix="followup"),
            OpportunityForm(actor=org.sales1),
            TransferForm(actor=org.manager, prefix="transfer"),
        ]
        for form in forms_:
            if form.is_bound:
                form.is_valid()  # errors mark the widgets invalid
            assert _widgets(form, FastFormRenderer()) == _widgets(form, BootstrapFormRenderer()), (
                type(form).__name__
            )
