"""Why a task was issued, in a few Japanese words for the queue and the task page. The codes
travel on task.issued.v1 as the notifier puts them (services/notifier/tasks.py): eligibility's
review reasons and rejections (services/eligibility/rules.py, and an operator's own reject
reasons, review_labels.DECISION_REASONS), the scheduler's reasons for giving up calling or
booking, and for a bounced e-mail the kind of mail that did not arrive. A code this console
does not know yet is never shown bare: 「その他（code）」."""

TASK_REASONS = {
    "review": {
        "member_no_missing": "会員番号の入力がない",
        "member_unknown": "会員番号が名簿にない",
        "name_mismatch": "会員番号とお名前が名簿と合わない",
        "institution_name_missing": "勤務先の施設名の入力がない",
        "institution_prefecture_missing": "勤務先の都道府県の入力がない",
        "manager_mismatch": "開設者・管理者が名簿と合わない",
        "ambiguous_institution": "同じ名前の施設が複数ある",
        "role_kind_mismatch": "施設の種別が区分と合わない",
        "institution_unknown": "勤務先の施設が名簿にない",
    },
    "decline": {
        "withdrawn_member": "退会した会員",
        "no_member_behind_institution": "勤務先が会員の施設でない",
        # an operator's decision on a review (review_labels.DECISION_REASONS["reject"])
        "not_a_member": "会員でない（会員確認の判断）",
        "institution_not_member_run": "勤務先が会員の施設でない（会員確認の判断）",
        "withdrawn": "退会済み（会員確認の判断）",
    },
    "unreachable": {
        "no_answer_after_last_attempt": "何度かけても出なかった",
        "wrong_number": "番号が違う・使われていない",
    },
    "unschedulable": {
        "no_free_slot_within_horizon": "予約できる電話の枠がない",
    },
    "bounced": {  # the mail that did not reach the consultant (services/notifier/mail.py)
        "acknowledgement": "受付のお知らせ",
        "callback_booked": "連絡予定のお知らせ",
        "callback_fallback": "電話がつながらなかったお知らせ",
        "rejection": "対象外のお知らせ",
    },
}


def task_reason_label(kind: str, code: str | None) -> str | None:
    """The reason in Japanese; None when the task has none."""
    if not code:
        return None
    return TASK_REASONS.get(kind, {}).get(code) or f"その他（{code}）"
