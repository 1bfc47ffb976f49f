"""``FakeRunner``: the one fake of ``_runner.Runner`` for unit tests (commands answered without running them).

Answers are keyed by the program's base name (``"borg"``) or by a longer argv prefix (``("systemctl", "stop")``);
an answer is ``(rc, stdout, stderr)``, a ``Result``, or a function ``(argv, **call) -> either``. A program with no
answer is reported missing, as on a server without it. Check mode and ``check=True`` behave as the real runner's
(the fake replaces only the execution). Every call is recorded in ``calls`` (argv and the keyword arguments).
"""

from __future__ import annotations

import os

from ansible_collections.sesdf.esus.plugins.module_utils._runner import Result, Runner


class FakeRunner(Runner):
    def __init__(self, answers=None, check_mode=False, timed_out=()):
        super().__init__(check_mode=check_mode)
        self.answers = dict(answers or {})
        self.timed_out = set(timed_out)  # programs that "do not answer in time"
        self.calls = []

    def _answer(self, argv):
        for size in range(len(argv), 0, -1):
            key = tuple(argv[:size])
            if key in self.answers:
                return self.answers[key]
        name = os.path.basename(argv[0])
        return self.answers.get(name, self.answers.get(argv[0]))

    def _execute(self, argv, timeout, env, stdin, text, cwd, stdout, stderr):
        call = {"timeout": timeout, "env": env, "stdin": stdin, "cwd": cwd}
        self.calls.append((list(argv), call))
        empty = "" if text else b""
        if os.path.basename(argv[0]) in self.timed_out:
            return Result(argv, None, empty, empty, timed_out=True, timeout=timeout)
        answer = self._answer(argv)
        if callable(answer):
            answer = answer(argv, **call)
        if answer is None:
            return Result(argv, None, empty, empty, missing=True)
        if isinstance(answer, Result):
            return answer
        rc, out, err = answer
        return Result(argv, rc, out, err)

    def spawn(self, argv, **kwargs):
        raise AssertionError(f"FakeRunner does not stream; {argv[0]} needs a real pipeline test")

    @property
    def argvs(self):
        return [argv for argv, _call in self.calls]
