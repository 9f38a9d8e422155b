"""An operator's action the desk cannot take as asked: the task is someone else's, already done,
of another kind ... `code` names the refusal in errors.REFUSALS (its status and Japanese text);
`detail`, when given, says more (who holds the task, until when)."""


class ActionRefused(Exception):
    def __init__(self, code: str, detail: str | None = None):
        super().__init__(code)
        self.code, self.detail = code, detail
