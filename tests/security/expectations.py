"""The access matrix's expected answers, written down by hand from DESIGN.md's rules.

Each named URL maps each HTTP method it answers to a ``Rule``: the kind of endpoint, the
permission a role must hold (``module.action``), and the world object that fills its
``pk``. Which demo roles hold a permission is read from the roles themselves (they are data,
editable in the UI); which records a role may see is written down here (``SEES``), so a
scope bug in the code cannot change what the test expects.

URLs whose view takes an ``<action>`` slug map the method to ``{slug: Rule}``; every slug
the view declares (``view_class.actions``) must appear. A list whose view can export
(``export_columns`` or ``export_format``) must appear in ``EXPORTS``.
"""

from __future__ import annotations

from dataclasses import dataclass

PUBLIC = "public"  # anyone, signed in or not
SIGNED_IN = "signed-in"  # any signed-in user, whatever their roles

# Which demo users see the record owned by sales1 ("A", 销售一部) and by sales3 ("B", 销售二部)
# through their role's data scope: all (admin, manager, finance, hr, warehouse), department
# and below (salesmgr1 heads 销售一部), own records (sales1, sales2, sales3).
SEES = {
    "A": frozenset({"admin", "manager", "finance", "hr", "warehouse", "salesmgr1", "sales1"}),
    "B": frozenset({"admin", "manager", "finance", "hr", "warehouse", "sales3"}),
}

# Kinds of record that belong to someone (the data scope applies); the others are shared.
SCOPED = {
    "customer",
    "attachment",
    "contact",
    "followup",
    "opportunity",
    "quote",
    "contract",
    "order",
    "payment",
    "invoice",
    "expense",
    "employee",
    "approval",
    "user",
}


@dataclass(frozen=True)
class Rule:
    kind: str  # list detail create update delete action export search report page public
    perm: str | tuple[str, ...]  # a code, any of several codes, PUBLIC or SIGNED_IN
    obj: str | None = None  # the world object whose pk fills the URL
    query: str = ""  # query string sent with the request
    # Who may, when the permission alone does not decide (the recipient of a notification,
    # the candidates of an approval step); replaces the permission-and-scope rule.
    roles: frozenset[str] | None = None
    # The world holds no such record or file: allowed roles may answer 404 too (a file
    # endpoint with nothing uploaded); kept few, each one weakens the check.
    absent: bool = False
    multipart: bool = False  # the API operation takes a file upload
    note: str = ""

    @property
    def scoped(self) -> bool:
        return self.obj in SCOPED


def R(kind: str, perm, obj: str | None = None, **extra) -> Rule:  # noqa: N802
    return Rule(kind=kind, perm=perm, obj=obj, **extra)


def crud(
    module: str, obj: str, *, delete: bool = True, add: str = "add", delete_perm: str = ""
) -> dict:
    """The list and detail routes of a DRF viewset."""
    detail = {
        "GET": R("detail", f"{module}.view", obj),
        "PUT": R("update", f"{module}.change", obj),
        "PATCH": R("update", f"{module}.change", obj),
    }
    if delete:
        detail["DELETE"] = R("delete", delete_perm or f"{module}.delete", obj)
    return {
        "list": {"GET": R("list", f"{module}.view"), "POST": R("create", f"{module}.{add}")},
        "detail": detail,
    }


def _api_crud(prefix: str, module: str, obj: str, **kwargs) -> dict[str, dict]:
    routes = crud(module, obj, **kwargs)
    return {f"api:{prefix}-list": routes["list"], f"api:{prefix}-detail": routes["detail"]}


def page_list(module: str, *, bulk: str | None = None, perm: str | None = None, **kw) -> dict:
    """A list page; POST is its bulk-action form. The form is open to whoever sees the list
    (an empty one changes nothing); each bulk action's service checks its own permission,
    which the refused-writes tests cover."""
    routes = {"GET": R("list", perm or f"{module}.view", **kw)}
    if bulk is not None:
        routes["POST"] = R("action", perm or f"{module}.view")
    return routes


def form(perm: str, obj: str | None = None, kind: str | None = None) -> dict:
    kind = kind or ("update" if obj else "create")
    return {"GET": R("page", perm, obj), "POST": R(kind, perm, obj)}


ANY_ONE = SIGNED_IN
OWNER = frozenset({"sales1"})  # the record's owner alone
# The first approval step of a sales1 contract: the head of 销售一部.
APPROVER = frozenset({"salesmgr1"})
# A registered payment is cancelled by whoever registered it, or by finance (approve).
PAYMENT_CANCEL = frozenset({"sales1", "finance", "admin"})
SALES_WRITE = ("sales.add", "sales.change")

EXPECTED: dict[str, dict] = {
    # --- shell, accounts ------------------------------------------------------------------
    "home": {"GET": R("page", ANY_ONE)},
    "healthz": {"GET": R("public", PUBLIC)},
    "search": {"GET": R("search", ANY_ONE, query="q=QX")},
    "set_language": {"POST": R("public", PUBLIC)},
    "login": {"GET": R("public", PUBLIC), "POST": R("public", PUBLIC), "PUT": R("public", PUBLIC)},
    "logout": {"POST": R("public", PUBLIC)},
    "password_change": {
        "GET": R("page", ANY_ONE),
        "POST": R("update", ANY_ONE),
        "PUT": R("update", ANY_ONE),
    },
    "password_change_done": {"GET": R("page", ANY_ONE)},
    "password_reset": {
        "GET": R("public", PUBLIC),
        "POST": R("public", PUBLIC),
        "PUT": R("public", PUBLIC),
    },
    "password_reset_done": {"GET": R("public", PUBLIC)},
    "password_reset_confirm": {
        "GET": R("public", PUBLIC),
        "POST": R("public", PUBLIC),
        "PUT": R("public", PUBLIC),
    },
    "password_reset_complete": {"GET": R("public", PUBLIC)},
    "schema": {"GET": R("public", PUBLIC, note="the API's description, no data")},
    "api_docs": {"GET": R("public", PUBLIC)},
    # --- system ---------------------------------------------------------------------------
    "system:user_list": page_list("system", bulk="system.change"),
    "system:user_create": form("system.add"),
    "system:user_edit": form("system.change", "user"),
    "system:user_password": form("system.change", "user"),
    "system:user_send_reset": {"POST": R("action", "system.change", "user")},
    "system:role_list": page_list("system", bulk="system.change"),
    "system:role_create": form("system.add"),
    "system:role_edit": form("system.change", "role"),
    "system:role_delete": {"POST": R("delete", "system.delete", "role")},
    "system:dictionary_list": page_list("system", bulk="system.change"),
    "system:dictionary_detail": {"GET": R("detail", "system.view", "dictionary")},
    "system:dictionary_item_create": {"POST": R("create", "system.change", "dictionary")},
    "system:dictionary_item": {"GET": R("detail", "system.view", "dictionary_item")},
    "system:dictionary_item_edit": form("system.change", "dictionary_item"),
    "system:settings": form("system.change", kind="update"),
    "system:customfield_list": page_list("system", bulk="system.change"),
    "system:customfield_create": form("system.change"),
    "system:customfield_edit": form("system.change", "customfield"),
    "system:audit_list": {"GET": R("list", "system.view")},
    "system:notification_list": page_list("", bulk=ANY_ONE, perm=ANY_ONE),
    "system:notification_read_all": {"POST": R("action", ANY_ONE)},
    "system:notification_read": {
        "POST": R("action", ANY_ONE, "notification", roles=frozenset({"sales1"}))
    },
    "system:notification_open": {
        "GET": R("detail", ANY_ONE, "notification", roles=frozenset({"sales1"}))
    },
    # --- HR -------------------------------------------------------------------------------
    "hr:department_list": page_list("hr", bulk="hr.change"),
    "hr:department_create": form("hr.add"),
    "hr:department_edit": form("hr.change", "department"),
    "hr:department_delete": {"POST": R("delete", "hr.delete", "department")},
    "hr:org_chart": {"GET": R("report", "hr.view")},
    "hr:position_list": page_list("hr", bulk="hr.change"),
    "hr:position_create": form("hr.add"),
    "hr:position_edit": form("hr.change", "position"),
    "hr:employee_list": page_list("hr", bulk="hr.change"),
    "hr:employee_create": form("hr.add"),
    "hr:employee_detail": {"GET": R("detail", "hr.view", "employee")},
    "hr:employee_edit": form("hr.change", "employee"),
    "hr:employee_transfer": form("hr.change", "employee", kind="action"),
    "hr:employee_promote": form("hr.change", "employee", kind="action"),
    "hr:employee_status": form("hr.change", "employee", kind="action"),
    "hr:handover": form("hr.assign", kind="action"),
    "hr:handover_detail": {"GET": R("detail", "hr.view", "handover")},
    "hr:target_list": {"GET": R("report", "hr.view")},
    "hr:target_cell": {"POST": R("update", "hr.change")},
    # --- customers ------------------------------------------------------------------------
    "customers:customer_list": page_list("customers", bulk="customers.view", query="q=QX"),
    "customers:customer_create": form("customers.add"),
    "customers:customer_duplicates": {"GET": R("search", "customers.view", query="name=QX")},
    "customers:saved_view_save": {"POST": R("create", "customers.view")},
    "customers:saved_view_delete": {"POST": R("delete", "customers.view", "saved_view")},
    "customers:customer_detail": {"GET": R("detail", "customers.view", "customer")},
    "customers:customer_edit": form("customers.change", "customer"),
    "customers:customer_transfer": {"POST": R("action", "customers.assign", "customer")},
    # The owner (customers.change) or someone with customers.assign over it (the GM too).
    "customers:customer_return": {
        "POST": R("action", ("customers.change", "customers.assign"), "customer")
    },
    "customers:customer_claim": {"POST": R("action", "customers.change", "pool_customer")},
    "customers:customer_merge": form("customers.delete", "customer", kind="action"),
    "customers:contact_create": {"POST": R("create", "customers.change", "customer")},
    "customers:followup_create": {"POST": R("create", "customers.change", "customer")},
    "customers:pool_list": page_list("customers", bulk="customers.view"),
    "customers:customer_options": {"GET": R("search", "customers.view", query="q=QX")},
    "customers:contact_list": page_list("customers", bulk="customers.change"),
    "customers:contact_edit": form("customers.change", "contact"),
    "customers:contact_delete": {"POST": R("delete", "customers.change", "contact")},
    "customers:followup_list": page_list("customers", bulk="customers.change"),
    "customers:followup_calendar": {"GET": R("report", "customers.view")},
    "customers:opportunity_board": {"GET": R("report", "customers.view")},
    "customers:opportunity_list": page_list("customers", bulk="customers.change"),
    "customers:opportunity_create": form("customers.add"),
    "customers:opportunity_edit": form("customers.change", "opportunity"),
    "customers:opportunity_move": {"POST": R("action", "customers.change", "opportunity")},
    "customers:opportunity_won": {"POST": R("action", "customers.change", "opportunity")},
    "customers:opportunity_lost": {"POST": R("action", "customers.change", "opportunity")},
    "customers:opportunity_delete": {"POST": R("delete", "customers.delete", "opportunity")},
    "customers:stage_list": {"GET": R("list", "system.view")},
    "customers:stage_create": form("system.change"),
    "customers:stage_edit": form("system.change", "stage"),
    "customers:stage_move": {"POST": R("action", "system.change", "stage")},
    # --- products -------------------------------------------------------------------------
    "products:product_list": page_list("products", bulk="products.change"),
    "products:product_create": form("products.add"),
    "products:product_detail": {"GET": R("detail", "products.view", "product")},
    "products:product_edit": form("products.change", "product"),
    "products:product_delete": {"POST": R("delete", "products.delete", "product")},
    "products:product_restore": {"POST": R("action", "products.delete", "product")},
    "products:deleted_list": page_list("products", bulk="products.delete", perm="products.delete"),
    "products:low_stock_list": page_list("products", bulk="products.change"),
    "products:stock_list": page_list("products", bulk="products.change"),
    "products:stock_movement_create": form("products.change"),
    "products:stock_transfer": form("products.change"),
    "products:warehouse_list": page_list("products", bulk="products.change"),
    "products:warehouse_create": form("products.change"),
    "products:warehouse_edit": form("products.change", "warehouse"),
    "products:warehouse_action": {
        "POST": {
            "set_default": R("action", "products.change", "warehouse"),
            "deactivate": R("action", "products.change", "warehouse"),
            "activate": R("action", "products.change", "warehouse"),
            "delete": R("delete", "products.change", "warehouse"),
        }
    },
    "products:category_list": {"GET": R("list", "products.view")},
    "products:category_create": form("products.add"),
    "products:category_edit": form("products.change", "category"),
    "products:category_move": {"POST": R("action", "products.change", "category")},
    "products:category_delete": {"POST": R("delete", "products.delete", "category")},
    # --- sales ----------------------------------------------------------------------------
    "sales:quote_list": page_list("sales", bulk="sales.change", query="q=QX"),
    "sales:quote_create": form("sales.add"),
    "sales:quote_detail": {"GET": R("detail", "sales.view", "quote")},
    "sales:quote_edit": form("sales.change", "quote"),
    "sales:quote_pdf": {"GET": R("export", "sales.view", "quote")},
    "sales:quote_action": {
        "POST": {
            "send": R("action", "sales.change", "quote"),
            "accept": R("action", "sales.change", "quote"),
            "reject": R("action", "sales.change", "quote"),
            "convert": R("action", "sales.add", "quote"),
            "delete": R("delete", "sales.delete", "quote"),
        }
    },
    "sales:contract_list": page_list("sales", bulk="sales.change", query="q=QX"),
    "sales:contract_create": form("sales.add"),
    "sales:contract_detail": {"GET": R("detail", "sales.view", "contract")},
    "sales:contract_edit": form("sales.change", "contract"),
    "sales:contract_amend": form("sales.change", "contract", kind="action"),
    "sales:contract_order_create": form("sales.add", "contract", kind="create"),
    "sales:contract_attach": {"POST": R("create", "sales.change", "contract")},
    "sales:contract_pdf": {"GET": R("export", "sales.view", "contract")},
    "sales:contract_action": {
        "POST": {
            "submit": R("action", "sales.change", "contract"),
            "complete": R("action", "sales.change", "contract"),
            "terminate": R("action", "sales.change", "contract"),
            "delete": R("delete", "sales.delete", "contract"),
        }
    },
    "sales:amendment_detail": {"GET": R("detail", "sales.view", "amendment")},
    "sales:order_list": page_list("sales", bulk="sales.change", query="q=QX"),
    "sales:order_create": form("sales.add"),
    "sales:order_detail": {"GET": R("detail", "sales.view", "order")},
    "sales:order_edit": form("sales.change", "order"),
    "sales:order_ship": form("products.change", "order", kind="action"),
    "sales:order_return": form("products.change", "order", kind="action"),
    "sales:order_action": {
        "POST": {
            "confirm": R("action", "sales.change", "order"),
            "complete": R("action", "sales.change", "order"),
            "cancel": R("action", "sales.change", "order"),
            "delete": R("delete", "sales.delete", "order"),
        }
    },
    "sales:shipment_list": page_list("sales", bulk="sales.change"),
    # Lookups of the quote, contract and order forms: for those who may fill them in.
    "sales:customer_options": {"GET": R("search", SALES_WRITE, query="q=QX")},
    "sales:product_options": {"GET": R("search", SALES_WRITE, query="q=QX")},
    "sales:customer_fields": {
        "GET": R("search", SALES_WRITE, query="kind=contract&customer={customer}")
    },
    "sales:lines_preview": {"POST": R("action", SALES_WRITE)},
    # --- finance --------------------------------------------------------------------------
    "finance:payment_list": page_list("finance", bulk="finance.change", query="q=QX"),
    "finance:payment_create": form("finance.add"),
    "finance:payment_detail": {"GET": R("detail", "finance.view", "payment")},
    "finance:refund_create": form("finance.add", "payment", kind="create"),
    "finance:payment_action": {
        "POST": {
            "confirm": R("action", "finance.approve", "payment"),
            "reject": R("action", "finance.approve", "payment"),
            "cancel": R("action", "finance.add", "payment", roles=PAYMENT_CANCEL),
            "reverse": R("action", "finance.approve", "payment"),
        }
    },
    "finance:invoice_list": page_list("finance", bulk="finance.change", query="q=QX"),
    "finance:invoice_create": form("finance.add"),
    "finance:invoice_detail": {"GET": R("detail", "finance.view", "invoice")},
    "finance:invoice_action": {
        "POST": {
            "issue": R("action", "finance.change", "invoice"),
            "void": R("action", "finance.change", "invoice"),
        }
    },
    "finance:refund_list": page_list("finance", bulk="finance.change", query="q=QX"),
    "finance:refund_detail": {"GET": R("detail", "finance.view", "refund")},
    "finance:expense_list": page_list("finance", bulk="finance.change", query="q=QX"),
    "finance:expense_create": form("finance.add"),
    "finance:expense_detail": {"GET": R("detail", "finance.view", "expense")},
    # An expense claim is edited and submitted by the one who spent the money.
    "finance:expense_edit": {
        "GET": R("page", "finance.add", "expense", roles=OWNER),
        "POST": R("update", "finance.add", "expense", roles=OWNER),
    },
    "finance:expense_action": {
        "POST": {
            "submit": R("action", "finance.add", "expense", roles=OWNER),
            "pay": R("action", "finance.change", "expense"),
        }
    },
    "finance:plan_detail": {
        "GET": R("detail", "finance.view", "contract"),
        "POST": R("update", "finance.add", "contract"),
    },
    "finance:reconciliation": {"GET": R("report", "finance.view")},
    "finance:aging": {"GET": R("report", "finance.view")},
    "finance:reports": {"GET": R("report", "finance.view")},
    "finance:contract_options": {"GET": R("search", "finance.view", query="q=QX")},
    "finance:customer_options": {"GET": R("search", "finance.view", query="q=QX")},
    # --- approvals ------------------------------------------------------------------------
    "approvals:request_list": page_list("", bulk=ANY_ONE, perm=ANY_ONE),
    "approvals:inbox": page_list("", bulk=ANY_ONE, perm=ANY_ONE),
    "approvals:my_requests": page_list("", bulk=ANY_ONE, perm=ANY_ONE),
    "approvals:request_detail": {"GET": R("detail", "sales.view", "approval")},
    "approvals:request_action": {
        "POST": {
            "approve": R("action", ANY_ONE, "approval", roles=APPROVER),
            "reject": R("action", ANY_ONE, "approval", roles=APPROVER),
            "withdraw": R("action", ANY_ONE, "approval", roles=OWNER),
        }
    },
    "approvals:rule_list": {"GET": R("list", "system.view")},
    "approvals:rule_create": form("system.change"),
    "approvals:rule_step_row": {"GET": R("page", "system.change")},
    "approvals:rule_edit": form("system.change", "approval_rule"),
    "approvals:rule_delete": {"POST": R("delete", "system.delete", "approval_rule")},
    # --- analytics ------------------------------------------------------------------------
    "analytics:dashboard": {"GET": R("report", "analytics.view")},
    "analytics:customer_value": {
        "GET": R("report", "analytics.view"),
        "POST": R("action", "analytics.view"),
    },
    "analytics:rfm": {"GET": R("report", "analytics.view")},
    "analytics:predictions": {"GET": R("report", "analytics.view")},
    "analytics:forecast": {"GET": R("report", "analytics.view")},
    # --- imports --------------------------------------------------------------------------
    "imports:upload": {"GET": R("page", "customers.add"), "POST": R("create", "customers.add")},
    "imports:template": {"GET": R("export", "customers.add")},
    "imports:preview": {"GET": R("detail", "customers.add", "import_job")},
    "imports:run": {"POST": R("action", "customers.add", "import_job")},
    "imports:result": {"GET": R("detail", "customers.add", "import_job")},
    "imports:progress": {"GET": R("detail", "customers.add", "import_job")},
    # --- uploaded files (the world uploads none: allowed roles get 404 as well) -----------
    "files:attachment": {"GET": R("export", "sales.view", "attachment", absent=True)},
    "files:product": {"GET": R("export", "products.view", "product", absent=True)},
    "files:logo": {"GET": R("export", ANY_ONE, absent=True)},
    # --- API ------------------------------------------------------------------------------
    "api:api-root": {"GET": R("page", ANY_ONE)},
    "api:auth_token": {"POST": R("public", PUBLIC), "DELETE": R("action", ANY_ONE)},
    "api:me": {"GET": R("detail", ANY_ONE)},
    "api:customer_import": {"POST": R("create", "customers.add", multipart=True)},
    "api:customer_export": {"GET": R("export", "customers.export")},
    "api:import_job_detail": {"GET": R("detail", "customers.add", "import_job")},
    "api:analytics-dashboard": {"GET": R("report", "analytics.view")},
    "api:analytics-rfm": {"GET": R("report", "analytics.view")},
    "api:analytics-recommendations": {
        "GET": R("report", "analytics.view", query="customer={customer}")
    },
    "api:analytics-forecast": {"GET": R("report", "analytics.view")},
    "api:analytics-customer-value-list": {"GET": R("report", "analytics.view")},
    "api:analytics-prediction-list": {"GET": R("report", "analytics.view")},
    **_api_crud("user", "system", "user", delete=False),
    "api:user-activate": {"POST": R("action", "system.change", "user")},
    "api:user-deactivate": {"POST": R("action", "system.change", "user")},
    "api:user-set-password": {"POST": R("action", "system.change", "user")},
    **_api_crud("role", "system", "role"),
    **_api_crud("department", "hr", "department"),
    "api:dictionary-list": {"GET": R("list", ANY_ONE)},
    "api:dictionary-detail": {"GET": R("detail", ANY_ONE, "dictionary")},
    "api:dictionary-item-list": {
        "GET": R("list", ANY_ONE),
        "POST": R("create", "system.change"),
    },
    "api:dictionary-item-detail": {
        "GET": R("detail", ANY_ONE, "dictionary_item"),
        "PUT": R("update", "system.change", "dictionary_item"),
        "PATCH": R("update", "system.change", "dictionary_item"),
    },
    "api:audit-log-list": {"GET": R("list", "system.view")},
    "api:audit-log-detail": {"GET": R("detail", "system.view", "audit_log")},
    "api:notification-list": {"GET": R("list", ANY_ONE)},
    "api:notification-mark-read": {"POST": R("action", ANY_ONE)},
    **_api_crud("customer", "customers", "customer"),
    "api:customer-pool": {"GET": R("list", "customers.view")},
    "api:customer-claim": {"POST": R("action", "customers.change", "pool_customer")},
    "api:customer-return-to-pool": {
        "POST": R("action", ("customers.change", "customers.assign"), "customer")
    },
    "api:customer-timeline": {"GET": R("detail", "customers.view", "customer")},
    "api:customer-transfer": {"POST": R("action", "customers.assign", "customer")},
    # Removing a contact or a follow-up is part of editing the customer (customers.change),
    # on the page and in the API alike.
    **_api_crud("contact", "customers", "contact", delete_perm="customers.change"),
    **_api_crud("followup", "customers", "followup", delete_perm="customers.change"),
    **_api_crud("position", "hr", "position", delete=False),
    **_api_crud("employee", "hr", "employee"),
    "api:employee-handover": {"POST": R("action", "hr.assign", "employee")},
    **_api_crud("sales-target", "hr", "target", delete=False),
    **_api_crud("opportunity", "customers", "opportunity"),
    "api:opportunity-lost": {"POST": R("action", "customers.change", "opportunity")},
    "api:opportunity-move": {"POST": R("action", "customers.change", "opportunity")},
    "api:opportunity-won": {"POST": R("action", "customers.change", "opportunity")},
    "api:pipeline-stage-list": {"GET": R("list", "customers.view")},
    **_api_crud("product-category", "products", "category"),
    **_api_crud("product", "products", "product"),
    "api:stock-movement-list": {
        "GET": R("list", "products.view"),
        "POST": R("create", "products.change"),
    },
    "api:stock-movement-detail": {"GET": R("detail", "products.view", "stock_movement")},
    **_api_crud("warehouse", "products", "warehouse"),
    "api:warehouse-activate": {"POST": R("action", "products.change", "warehouse")},
    "api:warehouse-deactivate": {"POST": R("action", "products.change", "warehouse")},
    "api:warehouse-set-default": {"POST": R("action", "products.change", "warehouse")},
    "api:stock-transfer-list": {"POST": R("create", "products.change")},
    "api:approval-list": {"GET": R("list", ANY_ONE)},
    "api:approval-detail": {"GET": R("detail", "sales.view", "approval")},
    "api:approval-approve": {"POST": R("action", ANY_ONE, "approval", roles=APPROVER)},
    "api:approval-reject": {"POST": R("action", ANY_ONE, "approval", roles=APPROVER)},
    "api:approval-withdraw": {"POST": R("action", ANY_ONE, "approval", roles=OWNER)},
    **_api_crud("approval-rule", "system", "approval_rule"),
    **_api_crud("quote", "sales", "quote"),
    "api:quote-accept": {"POST": R("action", "sales.change", "quote")},
    "api:quote-convert": {"POST": R("action", "sales.add", "quote")},
    "api:quote-pdf": {"GET": R("export", "sales.view", "quote")},
    "api:quote-reject": {"POST": R("action", "sales.change", "quote")},
    "api:quote-send": {"POST": R("action", "sales.change", "quote")},
    **_api_crud("contract", "sales", "contract"),
    "api:contract-amend": {"POST": R("action", "sales.change", "contract")},
    "api:contract-amendments": {"GET": R("detail", "sales.view", "contract")},
    "api:contract-complete": {"POST": R("action", "sales.change", "contract")},
    "api:contract-orders": {"POST": R("create", "sales.add", "contract")},
    "api:contract-pdf": {"GET": R("export", "sales.view", "contract")},
    "api:contract-submit": {"POST": R("action", "sales.change", "contract")},
    "api:contract-terminate": {"POST": R("action", "sales.change", "contract")},
    **_api_crud("order", "sales", "order"),
    "api:order-cancel": {"POST": R("action", "sales.change", "order")},
    "api:order-complete": {"POST": R("action", "sales.change", "order")},
    "api:order-confirm": {"POST": R("action", "sales.change", "order")},
    "api:order-return-goods": {"POST": R("action", "products.change", "order")},
    "api:order-ship": {"POST": R("action", "products.change", "order")},
    "api:shipment-list": {"GET": R("list", "sales.view")},
    "api:shipment-detail": {"GET": R("detail", "sales.view", "shipment")},
    "api:receivable-plan-list": {"GET": R("list", "finance.view")},
    "api:receivable-plan-contract": {
        "GET": R("detail", "finance.view", "contract"),
        "PUT": R("update", "finance.add", "contract"),
    },
    "api:payment-list": {"GET": R("list", "finance.view"), "POST": R("create", "finance.add")},
    "api:payment-detail": {"GET": R("detail", "finance.view", "payment")},
    "api:payment-cancel": {"POST": R("action", "finance.add", "payment", roles=PAYMENT_CANCEL)},
    "api:payment-confirm": {"POST": R("action", "finance.approve", "payment")},
    "api:payment-reject": {"POST": R("action", "finance.approve", "payment")},
    "api:payment-reverse": {"POST": R("action", "finance.approve", "payment")},
    "api:invoice-list": {"GET": R("list", "finance.view"), "POST": R("create", "finance.add")},
    "api:invoice-detail": {"GET": R("detail", "finance.view", "invoice")},
    "api:invoice-issue": {"POST": R("action", "finance.change", "invoice")},
    "api:invoice-void": {"POST": R("action", "finance.change", "invoice")},
    "api:refund-list": {"GET": R("list", "finance.view"), "POST": R("create", "finance.add")},
    "api:refund-detail": {"GET": R("detail", "finance.view", "refund")},
    "api:expense-list": {"GET": R("list", "finance.view"), "POST": R("create", "finance.add")},
    "api:expense-detail": {
        "GET": R("detail", "finance.view", "expense"),
        "PUT": R("update", "finance.add", "expense", roles=OWNER),
        "PATCH": R("update", "finance.add", "expense", roles=OWNER),
    },
    "api:expense-pay": {"POST": R("action", "finance.change", "expense")},
    "api:expense-submit": {"POST": R("action", "finance.add", "expense", roles=OWNER)},
    "api:report-collections": {"GET": R("report", "finance.view")},
    "api:report-expenses": {"GET": R("report", "finance.view")},
    "api:report-receivables-aging": {"GET": R("report", "finance.view")},
    "api:report-reconciliation": {"GET": R("report", "finance.view")},
}

# List pages that export (GET ?export=csv|xlsx): the permission the export needs.
EXPORTS: dict[str, str] = {
    "customers:customer_list": "customers.export",
    "customers:pool_list": "customers.export",
    "customers:contact_list": "customers.export",
    "customers:followup_list": "customers.export",
    "customers:opportunity_list": "customers.export",
    "sales:quote_list": "sales.export",
    "sales:contract_list": "sales.export",
    "sales:order_list": "sales.export",
    "sales:shipment_list": "sales.export",
    "finance:payment_list": "finance.export",
    "finance:invoice_list": "finance.export",
    "finance:refund_list": "finance.export",
    "finance:expense_list": "finance.export",
    "finance:reports": "finance.export",
    "products:product_list": "products.export",
    "products:stock_list": "products.export",
    "products:low_stock_list": "products.export",
    "products:warehouse_list": "products.export",
    "products:deleted_list": "products.delete",  # and products.export, which both hold
    "hr:employee_list": "hr.export",
    "hr:department_list": "hr.export",
    "hr:position_list": "hr.export",
    "system:user_list": "system.export",
    "system:role_list": "system.export",
    "system:dictionary_list": "system.export",
    "system:customfield_list": "system.export",
    "system:audit_list": "system.export",
    "analytics:dashboard": "analytics.export",
    "analytics:customer_value": "analytics.export",
    "analytics:rfm": "analytics.export",
    "analytics:predictions": "analytics.export",
    "analytics:forecast": "analytics.export",
}

# What the matrix found and is not fixed yet, by operation id with the reason (each one
# an xfail, strict: the test turns red once the code is fixed, so the entry is removed).
# Empty: the refusals it found (a body validated before the permission) are fixed.
KNOWN_FINDINGS: dict[str, str] = {}
