"""The admin area at `/admin`, behind its own login (`ASSISTANT_ADMIN_AUTH`, apart from the
customer's optional `ASSISTANT_AUTH`); not served at all while that setting is unset.

desk.py       the admin's caller, the channel and the audit trail every tab shares
knowledge.py  uploads, knowledge-base status and removal of documents
review.py     conversation search, a transcript with its sources and state, hand back
insights.py   the report of dialog.insights: figures, two plots, knowledge gaps, CSV downloads
audit.py      the recent admin actions
page.py       the tabs (Blocks) and `mount_admin`

Every admin action goes through the channel with an admin caller (`admin:<user>`) and is recorded
in the audit trail with that user.
"""

from ui.admin.desk import AdminDesk, admin_caller
from ui.admin.page import build_admin_blocks, mount_admin

__all__ = ["AdminDesk", "admin_caller", "build_admin_blocks", "mount_admin"]
