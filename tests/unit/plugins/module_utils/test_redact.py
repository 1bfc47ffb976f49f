"""_redact: secrets masked in text a module returns (an installer's output), useful words kept."""

from __future__ import annotations

import pytest

from ansible_collections.sesdf.esus.plugins.module_utils._redact import MASK, is_secret_key, redact, redact_lines

SECRET = "Xq9-s3gredo!"


@pytest.mark.parametrize(
    "line, kept",
    [
        (f"java -jar eSUS.jar -password={SECRET} -console", "-console"),
        (f"Senha: {SECRET}", "Senha:"),
        (f"password={SECRET}", "password="),
        (f"spring.datasource.password = {SECRET}", "spring.datasource.password"),
        (f'{{"version": "5.3.21", "databasePassword": "{SECRET}"}}', '"version": "5.3.21"'),
        (f"jdbc:postgresql://localhost:5433/esus?user=esus&password={SECRET}&ssl=false", "&ssl=false"),
        (f"url postgresql://esus:{SECRET}@localhost:5433/esus", "@localhost:5433/esus"),
        (f"--senha {SECRET} --continue", "--continue"),
        (f"DB_PASS={SECRET}", "DB_PASS="),
    ],
)
def test_known_key_value_forms_are_masked_and_the_rest_of_the_line_kept(line, kept):
    out = redact(line)
    assert SECRET not in out and MASK in out
    assert kept in out


def test_a_literal_secret_is_masked_wherever_it_appears_and_error_lines_stay():
    text = f"ERRO: falha ao conectar com esus/{SECRET} em localhost:5433\nInstalação interrompida"
    out = redact(text, secrets={SECRET, None, ""})
    assert SECRET not in out
    assert out.splitlines() == [f"ERRO: falha ao conectar com esus/{MASK} em localhost:5433", "Instalação interrompida"]


def test_the_longest_literal_is_masked_first_so_no_tail_of_it_is_left():
    out = redact("abcd1234efgh", secrets={"abcd", "abcd1234efgh"})
    assert out == MASK


def test_short_literals_are_not_masked_everywhere_but_still_after_a_key():
    assert redact("erro na linha abc", secrets={"abc"}) == "erro na linha abc"
    assert "abc" not in redact("Senha: abc", secrets={"abc"})


def test_plain_words_about_passwords_are_kept():
    line = "FATAL: password authentication failed for user esus"
    assert redact(line) == line
    assert redact_lines(["ok", None]) == ["ok", None] and redact(None) is None


def test_secret_keys():
    assert all(map(is_secret_key, ["databasePassword", "spring.datasource.password", "senha", "DB_PASS"]))
    assert not any(map(is_secret_key, ["databaseUrl", "version", "passo", "jreDirectory"]))
