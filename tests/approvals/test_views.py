"""The approval pages: lists, a request, decisions, the panel, the top bar, the rules admin."""

import pytest
from django.db import connection
from django.template import Context, Template
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from kehu.approvals import services
from kehu.approvals.models import ApprovalRequest, ApprovalRule, ApprovalStatus, ApproverKind
from kehu.sales.models import ContractStatus
from kehu.system.models import Role
from tests.approvals.conftest import submit
from tests.querycount import warm_page_queries

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}
LISTS = ["approvals:inbox", "approvals:my_requests", "approvals:request_list"]


def queries(client, url) -> tuple[int, object]:
    count, response = warm_page_queries(client, url)
    assert response.status_code == 200, response.content[:400]
    return count, response


def action_url(request, action):
    return reverse("approvals:request_action", args=[request.pk, action])


# --- lists ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LISTS)
def test_lists_need_a_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302 and "login" in response["Location"]


def test_the_inbox_lists_what_awaits_me(org, client_for):
    _, request = submit(org.sales1, amount="150000.00")
    page = client_for(org.salesmgr1).get(reverse("approvals:inbox")).content.decode()
    assert request.title in page and "Step 1 of 2: 销售经理" in page
    assert (
        request.title
        not in client_for(org.manager).get(reverse("approvals:inbox")).content.decode()
    )
    mine = client_for(org.sales1).get(reverse("approvals:my_requests")).content.decode()
    assert request.title in mine
    assert (
        request.title
        not in client_for(org.sales2).get(reverse("approvals:request_list")).content.decode()
    )
    assert (
        request.title
        in client_for(org.finance).get(reverse("approvals:request_list")).content.decode()
    )


def test_list_filters(org, client_for):
    _, pending = submit(org.sales1, amount="800.00", title="待审合同")
    _, approved = submit(org.sales1, amount="900.00", title="已批合同")
    services.approval_approve(actor=org.salesmgr1, request=approved)
    client = client_for(org.salesdirector)
    url = reverse("approvals:request_list")
    page = client.get(url, {"status": "approved"}).content.decode()
    assert "已批合同" in page and "待审合同" not in page
    page = client.get(url, {"document_type": "sales.contract", "q": "待审"}).content.decode()
    assert "待审合同" in page and "已批合同" not in page
    page = client.get(url, {"document_type": "sales.contract_amendment"}).content.decode()
    assert "待审合同" not in page
    results = client.get(url, {"status": "pending"}, **HTMX)
    assert "<html" not in results.content.decode() and "待审合同" in results.content.decode()


def test_search_by_number_or_customer_within_scope(org, client_for):
    """The title holds the document's number and customer (kehu/customers/linked_search.py)."""
    contract, mine = submit(org.sales1, amount="800.00", title="扩容合同")
    _, theirs = submit(org.sales3, amount="700.00", title="扩容合同")
    url = reverse("approvals:request_list")
    for client, sees_theirs in ((client_for(org.sales1), False), (client_for(org.manager), True)):
        for term in (contract.number, contract.customer.name, "扩容", "扩容合同"):
            page = client.get(url, {"q": term}).content.decode()
            assert mine.title in page, term
        page = client.get(url, {"q": theirs.title.split()[0]}).content.decode()
        assert (theirs.title in page) is sees_theirs and mine.title not in page


@pytest.mark.parametrize("name", LISTS)
def test_lists_do_not_grow_with_rows(org, client_for, name):
    submit(org.sales1, amount="150000.00")
    client = client_for(org.salesdirector if name != "approvals:my_requests" else org.sales1)
    few, _ = queries(client, reverse(name))
    for index in range(6):
        submit(org.sales1 if index % 2 else org.sales2, amount="150000.00")
    many, _ = queries(client, reverse(name))
    assert many == few
    assert many <= 18


# --- one request ----------------------------------------------------------------------------


def test_detail_allowed_for_those_involved_404_for_others(org, client_for):
    _, request = submit(org.sales1, amount="150000.00")
    url = request.get_absolute_url()
    for user in (org.sales1, org.salesmgr1, org.salesdirector, org.manager, org.finance):
        assert client_for(user).get(url).status_code == 200, user
    for user in (org.sales2, org.sales3, org.hr):
        assert client_for(user).get(url).status_code == 404, user
    assert (
        client_for(org.admin).get(reverse("approvals:request_detail", args=[99999])).status_code
        == 404
    )


def test_detail_shows_document_steps_history_and_buttons(
    org, client_for, django_assert_max_num_queries
):
    contract, request = submit(org.sales1, amount="150000.00")
    services.approval_approve(actor=org.salesmgr1, request=request, comment="同意")
    client = client_for(org.manager)
    with django_assert_max_num_queries(20):
        page = client.get(request.get_absolute_url()).content.decode()
    assert contract.get_absolute_url() in page
    assert "150,000.00" in page and "sales1" in page
    assert "大额合同（10万元以上）" in page
    assert "Approved by salesmgr1" in page and "同意" in page
    assert "May decide:" in page and "(you)" in page
    assert action_url(request, "approve") in page and action_url(request, "reject") in page
    assert action_url(request, "withdraw") not in page
    submitter = client_for(org.sales1).get(request.get_absolute_url()).content.decode()
    assert action_url(request, "approve") not in submitter
    assert action_url(request, "withdraw") in submitter
    assert "You cannot approve your own submission" in submitter


def test_the_detail_query_count_does_not_grow_with_steps_and_candidates(org, client_for):
    _, small = submit(org.sales1, amount="100.00")
    _, large = submit(org.sales2, amount="150000.00")
    services.approval_approve(actor=org.salesmgr1, request=large)
    client = client_for(org.salesdirector)
    one, _ = queries(client, small.get_absolute_url())
    two, _ = queries(client, large.get_absolute_url())
    assert two == one


def test_approve_through_the_page(org, client_for):
    contract, request = submit(org.sales1)
    client = client_for(org.salesmgr1)
    response = client.post(
        action_url(request, "approve"),
        {"comment": "好", "version": request.version, "next": contract.get_absolute_url()},
    )
    assert response.status_code == 302 and response["Location"] == contract.get_absolute_url()
    request.refresh_from_db()
    contract.refresh_from_db()
    assert request.status == ApprovalStatus.APPROVED and contract.status == ContractStatus.ACTIVE
    assert request.steps.get().comment == "好"


def test_approve_with_htmx_redirects_and_says_what_happened(org, client_for):
    _, request = submit(org.sales1, amount="150000.00")
    client = client_for(org.salesmgr1)
    response = client.post(action_url(request, "approve"), {"version": request.version}, **HTMX)
    assert response.status_code == 204 and response["HX-Redirect"] == request.get_absolute_url()
    page = client.get(request.get_absolute_url()).content.decode()
    assert "It now waits for 总经理" in page


def test_an_unsafe_next_is_ignored(org, client_for):
    _, request = submit(org.sales1)
    response = client_for(org.salesmgr1).post(
        action_url(request, "approve"),
        {"version": request.version, "next": "https://evil.example/"},
    )
    assert response["Location"] == request.get_absolute_url()


def test_reject_without_a_comment_shows_the_error_inline(org, client_for):
    _, request = submit(org.sales1)
    client = client_for(org.salesmgr1)
    response = client.post(
        action_url(request, "reject"), {"comment": " ", "version": request.version}, **HTMX
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="comment-error"' in body and "Say why you reject it" in body
    assert "<html" not in body
    plain = client.post(action_url(request, "reject"), {"comment": "", "version": request.version})
    assert plain.status_code == 400 and "Say why you reject it" in plain.content.decode()
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING and request.actions.count() == 1
    response = client.post(
        action_url(request, "reject"), {"comment": "价格太低", "version": request.version}
    )
    assert response.status_code == 302
    request.refresh_from_db()
    assert request.status == ApprovalStatus.REJECTED


def test_refusals_are_explained_and_change_nothing(org, client_for):
    _, own = submit(org.salesmgr1)
    response = client_for(org.salesmgr1).post(action_url(own, "approve"), {"version": own.version})
    # The submitter is not a candidate: the request reads as theirs, the approval is refused.
    assert response.status_code == 403
    assert "You cannot approve or reject your own submission." in response.content.decode()
    _, request = submit(org.sales1, amount="150000.00")
    response = client_for(org.manager).post(
        action_url(request, "approve"), {"version": request.version}, **HTMX
    )
    assert response.status_code == 200
    assert "This step is waiting for 销售经理, not for you." in response.content.decode()
    response = client_for(org.salesmgr1).post(
        action_url(request, "withdraw"), {"version": request.version}
    )
    assert response.status_code == 403 and "Only the submitter" in response.content.decode()
    for approval in (own, request):
        approval.refresh_from_db()
        assert approval.status == ApprovalStatus.PENDING and approval.version == 1
        assert approval.actions.count() == 1


def test_a_stale_click_is_a_409_with_a_message(org, client_for):
    _, request = submit(org.sales1)
    services.approval_approve(actor=org.salesdirector, request=request)
    response = client_for(org.salesmgr1).post(action_url(request, "approve"), {"version": 1})
    assert response.status_code == 409
    assert "This request has already been approved." in response.content.decode()
    _, large = submit(org.sales1, amount="150000.00")
    services.approval_approve(actor=org.salesmgr1, request=large)
    response = client_for(org.manager).post(action_url(large, "approve"), {"version": 1}, **HTMX)
    assert response.status_code == 200 and "changed by someone else" in response.content.decode()
    large.refresh_from_db()
    assert large.status == ApprovalStatus.PENDING


def test_withdraw_through_the_page(org, client_for):
    contract, request = submit(org.sales1)
    response = client_for(org.sales1).post(
        action_url(request, "withdraw"), {"version": request.version}
    )
    assert response.status_code == 302
    contract.refresh_from_db()
    assert contract.status == ContractStatus.DRAFT


def test_actions_refuse_get_unknown_actions_and_outsiders(org, client_for):
    _, request = submit(org.sales1)
    assert client_for(org.salesmgr1).get(action_url(request, "approve")).status_code == 405
    assert client_for(org.salesmgr1).post(action_url(request, "delete")).status_code == 404
    assert client_for(org.sales3).post(action_url(request, "approve")).status_code == 404
    request.refresh_from_db()
    assert request.status == ApprovalStatus.PENDING


# --- the panel on a document page ------------------------------------------------------------


def render_panel(user, document) -> str:
    request = RequestFactory().get("/sales/contracts/1/")
    request.user = user
    template = Template("{% load approvals %}{% approval_panel document %}")
    return template.render(Context({"request": request, "document": document, "csrf_token": "t"}))


def test_the_panel_shows_history_and_the_viewers_buttons(org, django_assert_max_num_queries):
    contract, request = submit(org.sales1, amount="150000.00")
    services.approval_reject(actor=org.salesmgr1, request=request, comment="改付款条件")
    contract.refresh_from_db()
    from kehu.sales.services import contract_submit

    contract_submit(actor=org.sales1, contract=contract)
    contract.refresh_from_db()
    with django_assert_max_num_queries(6):
        html = render_panel(org.salesdirector, contract)
    assert 'id="approval-panel"' in html
    assert "One earlier submission" in html and "改付款条件" in html
    assert "/approve/" in html and "/reject/" in html
    assert 'name="next" value="/sales/contracts/1/"' in html
    owner = render_panel(org.sales1, contract)
    assert "/approve/" not in owner and "/withdraw/" in owner
    finance = render_panel(org.finance, contract)
    assert (
        "/approve/" not in finance
        and "/withdraw/" not in finance
        and "Waiting for 销售经理" in finance
    )


def test_the_panel_of_a_document_never_submitted(org):
    from tests.sales.factories import contract_for

    html = render_panel(org.sales1, contract_for(org.sales1))
    assert "Not submitted for approval yet." in html


# --- top bar and home -------------------------------------------------------------------------


def test_the_top_bar_badge_counts_my_pending_steps(org, client_for):
    submit(org.sales1)
    submit(org.sales2)
    page = client_for(org.salesmgr1).get(reverse("home")).content.decode()
    assert 'id="approval-inbox-link"' in page and 'id="approval-count">2<' in page
    page = client_for(org.manager).get(reverse("home")).content.decode()
    assert 'id="approval-inbox-link"' in page and 'id="approval-count"' not in page
    page = client_for(org.sales1).get(reverse("home")).content.decode()
    assert 'id="approval-inbox-link"' not in page


def test_the_badge_costs_one_query(org, client_for):
    from kehu.approvals.context_processors import approvals

    _, request = submit(org.sales1)
    http = RequestFactory().get("/")
    http.user = org.salesmgr1
    context = approvals(http)
    assert bool(context["approval_can_approve"])  # permissions: cached after the first read
    with CaptureQueriesContext(connection) as ctx:
        assert int(str(context["approval_pending_count"])) == 1
        assert context["approval_pending_count"]
    assert len(ctx.captured_queries) == 1


def test_the_home_page_lists_what_awaits_me(org, client_for):
    _, request = submit(org.sales1)
    page = client_for(org.salesmgr1).get(reverse("home")).content.decode()
    assert "Awaiting my approval" in page and request.get_absolute_url() in page
    assert (
        "Awaiting my approval" not in client_for(org.sales1).get(reverse("home")).content.decode()
    )


def test_menu_items(org, client_for):
    manager = client_for(org.salesmgr1).get(reverse("home")).content.decode()
    assert reverse("approvals:inbox") in manager and reverse("approvals:request_list") in manager
    sales = client_for(org.sales1).get(reverse("home")).content.decode()
    assert f'href="{reverse("approvals:inbox")}"' not in sales
    assert reverse("approvals:request_list") in sales
    assert (
        reverse("approvals:rule_list")
        in client_for(org.admin).get(reverse("home")).content.decode()
    )
    assert reverse("approvals:rule_list") not in manager


# --- rules admin ------------------------------------------------------------------------------


def test_rule_pages_need_system_permissions(org, client_for):
    rule = ApprovalRule.objects.filter(document_type="sales.contract").first()
    for user in (org.salesmgr1, org.manager, org.sales1):
        client = client_for(user)
        assert client.get(reverse("approvals:rule_list")).status_code == 403
        assert client.get(reverse("approvals:rule_create")).status_code == 403
        assert client.get(rule.get_absolute_url()).status_code == 403
        assert client.get(reverse("approvals:rule_step_row")).status_code == 403
        assert client.post(reverse("approvals:rule_delete", args=[rule.pk])).status_code == 403
    assert ApprovalRule.objects.filter(pk=rule.pk).exists()


def test_a_viewer_sees_the_rules_but_no_edit_links(org, client_for):
    viewer = Role.objects.create(code="sysview", name="只读", permissions=["system.view"])
    org.hr.roles.set([viewer])
    page = client_for(org.hr).get(reverse("approvals:rule_list"))
    assert page.status_code == 200
    assert "大额合同（10万元以上）" in page.content.decode()
    assert reverse("approvals:rule_create") not in page.content.decode()
    rule = ApprovalRule.objects.filter(document_type="sales.contract").first()
    assert client_for(org.hr).get(rule.get_absolute_url()).status_code == 403


def test_the_rule_list_groups_by_type(org, client_for, django_assert_max_num_queries):
    client = client_for(org.admin)
    with django_assert_max_num_queries(14):
        page = client.get(reverse("approvals:rule_list")).content.decode()
    assert "Contract amendment" in page and "Contract" in page
    assert "销售经理" in page and "总经理" in page and "over 100,000.00" in page


def rule_post(**overrides) -> dict:
    data = {
        "name": "销售二部大单",
        "document_type": "sales.contract",
        "amount_over": "50000",
        "amount_up_to": "",
        "sort_order": "0",
        "is_active": "on",
        "approver_kind": ["role", "user"],
        "role": [str(Role.objects.get(code="sales_manager").pk), ""],
        "user": ["", ""],
    }
    data.update(overrides)
    return data


def test_create_a_rule_through_the_page(org, client_for):
    client = client_for(org.admin)
    assert client.get(reverse("approvals:rule_create")).status_code == 200
    data = rule_post(departments=[org.sales2_dept.pk], user=["", str(org.manager.pk)])
    response = client.post(reverse("approvals:rule_create"), data)
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = ApprovalRule.objects.get(name="销售二部大单")
    assert list(rule.departments.all()) == [org.sales2_dept]
    steps = list(rule.steps.order_by("sort_order"))
    assert [(s.approver_kind, s.role and s.role.code, s.user) for s in steps] == [
        (ApproverKind.ROLE, "sales_manager", None),
        (ApproverKind.USER, None, org.manager),
    ]


def test_bad_rule_input_is_shown_on_the_field_and_nothing_is_written(org, client_for):
    client = client_for(org.admin)
    before = ApprovalRule.objects.count()
    response = client.post(
        reverse("approvals:rule_create"),
        rule_post(amount_up_to="100", user=["", ""]),
        **HTMX,
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert "Must be more than" in body and "Choose a user." in body
    response = client.post(
        reverse("approvals:rule_create"),
        rule_post(approver_kind=[], role=[], user=[]),
    )
    assert (
        response.status_code == 400
        and "A rule needs at least one step." in response.content.decode()
    )
    assert ApprovalRule.objects.count() == before


def test_edit_a_rule_reorders_its_steps_and_refuses_stale_versions(org, client_for):
    rule = ApprovalRule.objects.get(name="大额合同（10万元以上）")
    client = client_for(org.admin)
    page = client.get(rule.get_absolute_url()).content.decode()
    assert "大额合同" in page and page.count('class="rule-step"') == 2
    gm = Role.objects.get(code="general_manager").pk
    sm = Role.objects.get(code="sales_manager").pk
    data = rule_post(
        name="大额合同",
        amount_over="100000.00",
        version=str(rule.version),
        approver_kind=["role", "role"],
        role=[str(gm), str(sm)],
        user=["", ""],
    )
    response = client.post(rule.get_absolute_url(), data)
    assert response.status_code == 302
    rule.refresh_from_db()
    assert rule.name == "大额合同" and rule.version == 2
    assert [s.role_id for s in rule.steps.order_by("sort_order")] == [gm, sm]
    stale = client.post(rule.get_absolute_url(), {**data, "name": "x"})
    assert stale.status_code == 400 and "changed by someone else" in stale.content.decode()
    rule.refresh_from_db()
    assert rule.name == "大额合同"


def test_running_requests_keep_their_steps_when_the_rule_changes(org, client_for):
    _, request = submit(org.sales1, amount="150000.00")
    rule = ApprovalRule.objects.get(name="大额合同（10万元以上）")
    services.approval_rule_update(
        actor=org.admin,
        rule=rule,
        expected_version=rule.version,
        data={"name": rule.name},
        departments=[],
        steps=[{"approver_kind": ApproverKind.USER, "user": org.admin}],
    )
    assert [s.approver_label for s in request.steps.order_by("sort_order")] == [
        "销售经理",
        "总经理",
    ]


def test_the_step_row_fragment(org, client_for):
    response = client_for(org.admin).get(reverse("approvals:rule_step_row"), **HTMX)
    body = response.content.decode()
    assert response.status_code == 200 and body.strip().startswith("<tr")
    assert 'name="approver_kind"' in body and 'name="role"' in body and 'name="user"' in body


def test_deleting_a_rule(org, client_for):
    used = ApprovalRule.objects.get(name="合同（10万元及以下）")
    submit(org.sales1)
    client = client_for(org.admin)
    response = client.post(reverse("approvals:rule_delete", args=[used.pk]))
    assert response.status_code == 302 and ApprovalRule.objects.filter(pk=used.pk).exists()
    unused = ApprovalRule.objects.get(name="大额合同（10万元以上）")
    response = client.post(reverse("approvals:rule_delete", args=[unused.pk]))
    assert response["Location"] == reverse("approvals:rule_list")
    assert not ApprovalRule.objects.filter(pk=unused.pk).exists()


def test_the_detail_links_the_documents_other_submissions(org, client_for):
    from kehu.sales.services import contract_submit

    contract, first = submit(org.sales1)
    services.approval_reject(actor=org.salesmgr1, request=first, comment="改")
    contract.refresh_from_db()
    contract_submit(actor=org.sales1, contract=contract)
    second = ApprovalRequest.objects.get(object_id=contract.pk, status="pending")
    page = client_for(org.salesmgr1).get(second.get_absolute_url()).content.decode()
    assert 'id="other-submissions"' in page and first.get_absolute_url() in page
