"""What a membership review reads like to an operator: each reason eligibility gives
(services/eligibility/rules.py), why each candidate is close, and the reasons an operator may
give for a decision (codes travel on eligibility.decided.v1; the labels stay here)."""

REVIEW_REASONS = {
    "member_no_missing": "会員番号が入力されていません。",
    "member_unknown": "入力された会員番号が会員名簿にありません（番号の誤り、または名簿にない方）。",
    "name_mismatch": "入力された会員番号は名簿にありますが、お名前・ふりがなが名簿と一致しません。",
    "institution_name_missing": "勤務先の医療機関・施設名が入力されていません。",
    "institution_prefecture_missing": "勤務先の都道府県が入力されていないため、施設を特定できません。",
    "manager_mismatch": "入力された開設者・管理者の会員番号が、名簿上のその施設の開設者・管理者と一致しません。",
    "ambiguous_institution": "同じ都道府県に同じ名前の施設が複数あり、どの施設か特定できません。",
    "role_kind_mismatch": "同じ名前の施設はありますが、種別（医療機関／介護施設）がご相談者の区分と異なります。",
    "institution_unknown": "勤務先の施設が名簿にありません（名称の違い、または会員が開設・管理していない施設）。",
}

CANDIDATE_WHY = {
    "same_name": "名前が同じ",
    "same_kana": "ふりがなが同じ",
    "number_given_name_differs": "入力された会員番号の会員（お名前が異なる）",
    "same_name_same_prefecture": "同じ都道府県の同じ名前の施設",
    "same_name_other_prefecture": "ほかの都道府県の同じ名前の施設",
    "similar_name": "似た名前の施設",
    "other_kind": "同じ名前で種別が異なる施設",
    "given_number_not_founder_or_manager": "入力された番号が開設者・管理者ではない施設",
}

DECISIONS = {"confirm": "対象として確認する", "reject": "対象外とする"}
# the short list an operator chooses from: a code per reason, never free text
DECISION_REASONS = {
    "confirm": {
        "member_no_typo": "会員番号の入力誤り（正しい会員を確認）",
        "name_variant": "お名前の表記ゆれ・旧姓など（同じ方と確認）",
        "registry_outdated": "名簿が古い（新しい会員・施設の情報で確認）",
        "checked_by_phone": "電話で確認した",
    },
    "reject": {
        "not_a_member": "会員ではない",
        "institution_not_member_run": "勤務先が会員の開設・管理する施設ではない",
        "withdrawn": "退会済み",
    },
}

# what the reviewer would compare with the candidates, had task.issued.v1 carried it (it does not yet)
NOT_CARRIED = ["会員番号（入力されたもの）", "勤務先の医療機関・施設名", "勤務先の都道府県", "開設者・管理者の会員番号",
               "ふりがな", "ご相談者の区分"]


def reason_label(code: str) -> str:
    """A reason in Japanese; a code this console does not know yet is shown as it is."""
    return REVIEW_REASONS.get(code, f"（理由コード：{code}）")


def why_label(code: str) -> str:
    return CANDIDATE_WHY.get(code, code)


def decision_reason_label(decision: str, code: str) -> str:
    return DECISION_REASONS.get(decision, {}).get(code, code)
