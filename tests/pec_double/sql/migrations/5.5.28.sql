-- 5.5.28: the identity, profile and audit tables reshaped as a real 5.5 shows them (docs/pec-facts.md, third review:
-- "Profiles"), on a 4.5.5-shaped database, keeping every row. Names the facts attest keep their names; every column
-- the facts do not attest that the double needs is the double's own and ends in _dbl. PostgreSQL 9.6 syntax; one
-- transaction (the installer's). Transmission tables are not touched (sql/strict/transmissao-por-nodo.sql).
-- - st_* flags are integers 0/1 on 5.x: tb_usuario.st_bloqueado and st_forcar_troca_senha (default 0),
--   tb_lotacao.st_ativo, tb_unidade_saude.st_ativo, tb_equipe.st_ativo (default 1), tb_cidadao.st_faleceu (default 0);
-- - tb_prof.no_profissional is renamed no_civil_profissional; tb_prof.no_social_profissional is added (NULL);
-- - tb_ator_papel.tp_ator_papel is renamed no_tipo_ator_papel (same values); tb_ator_papel.st_ativo is added (1);
-- - tb_lotacao.co_prof is added (references tb_prof, filled from the lotação's tb_ator_papel, NOT NULL);
-- - tb_localidade is new (co_localidade: the PEC's internal município id, which is not the IBGE code; the double's
--   no_localidade_dbl, co_ibge_dbl), seeded with a few municipalities and a row (ids from 9001) for every IBGE code
--   of tb_unidade_saude and tb_adm_municipal it lacks, a 6-digit code completed with its check digit;
-- - tb_adm_municipal.co_ibge_municipio is replaced by co_localidade (references tb_localidade);
-- - tb_perfil: tp_perfil is renamed type (same values), st_ativo becomes situation (integer 1/0), st_padrao becomes
--   no_perfil_padrao (the profile's name for a default profile, NULL otherwise), localidade is added (NULL);
-- - tb_perfil_recurso holds resource names: no_recurso replaces co_recurso; tb_recurso is dropped;
-- - audit: the 4.x double's tg_auditoria_* triggers, fn_auditoria_registro and tb_auditoria_evento (with its events)
--   are dropped; ta_lotacao, ta_ator_papel, ta_ator_papel_perfil (each the base table's columns + dt_auditoria_dbl,
--   tp_operacao_dbl I/U/D, no_usuario_banco_dbl) are written by the triggers audit_tb_lotacao, audit_tb_ator_papel,
--   audit_rl_ator_papel_perfil (function fn_auditoria_ta_dbl).

-- The old audit goes first: nothing below is recorded by it.
DROP TRIGGER tg_auditoria_lotacao ON tb_lotacao;
DROP TRIGGER tg_auditoria_ator_papel ON tb_ator_papel;
DROP TRIGGER tg_auditoria_ator_papel_perfil ON rl_ator_papel_perfil;
DROP FUNCTION fn_auditoria_registro();
DROP TABLE tb_auditoria_evento;

-- Flags: boolean -> integer 0/1.
ALTER TABLE tb_usuario
    ALTER COLUMN st_bloqueado DROP DEFAULT,
    ALTER COLUMN st_bloqueado TYPE integer USING CASE WHEN st_bloqueado THEN 1 ELSE 0 END,
    ALTER COLUMN st_bloqueado SET DEFAULT 0,
    ALTER COLUMN st_forcar_troca_senha DROP DEFAULT,
    ALTER COLUMN st_forcar_troca_senha TYPE integer USING CASE WHEN st_forcar_troca_senha THEN 1 ELSE 0 END,
    ALTER COLUMN st_forcar_troca_senha SET DEFAULT 0;
ALTER TABLE tb_unidade_saude
    ALTER COLUMN st_ativo DROP DEFAULT,
    ALTER COLUMN st_ativo TYPE integer USING CASE WHEN st_ativo THEN 1 ELSE 0 END,
    ALTER COLUMN st_ativo SET DEFAULT 1;
ALTER TABLE tb_equipe
    ALTER COLUMN st_ativo DROP DEFAULT,
    ALTER COLUMN st_ativo TYPE integer USING CASE WHEN st_ativo THEN 1 ELSE 0 END,
    ALTER COLUMN st_ativo SET DEFAULT 1;
ALTER TABLE tb_cidadao
    ALTER COLUMN st_faleceu DROP DEFAULT,
    ALTER COLUMN st_faleceu TYPE integer USING CASE WHEN st_faleceu THEN 1 ELSE 0 END,
    ALTER COLUMN st_faleceu SET DEFAULT 0;

-- Professionals and their roles.
ALTER TABLE tb_prof RENAME COLUMN no_profissional TO no_civil_profissional;
ALTER TABLE tb_prof ADD COLUMN no_social_profissional varchar NULL;

ALTER TABLE tb_ator_papel RENAME COLUMN tp_ator_papel TO no_tipo_ator_papel;
ALTER TABLE tb_ator_papel ADD COLUMN st_ativo integer NOT NULL DEFAULT 1;

ALTER TABLE tb_lotacao ADD COLUMN co_prof bigint REFERENCES tb_prof (co_seq_prof);
UPDATE tb_lotacao l SET co_prof = ap.co_prof FROM tb_ator_papel ap WHERE ap.co_seq_ator_papel = l.co_ator_papel;
ALTER TABLE tb_lotacao ALTER COLUMN co_prof SET NOT NULL;
ALTER TABLE tb_lotacao
    ALTER COLUMN st_ativo DROP DEFAULT,
    ALTER COLUMN st_ativo TYPE integer USING CASE WHEN st_ativo THEN 1 ELSE 0 END,
    ALTER COLUMN st_ativo SET DEFAULT 1;

-- Municipalities: the PEC's internal id is not the IBGE code (POST /api/cnes/{municipioId} takes the internal one).
CREATE TABLE tb_localidade (
    co_localidade      bigint PRIMARY KEY,
    no_localidade_dbl  varchar(255) NOT NULL,
    co_ibge_dbl        varchar(7) NOT NULL UNIQUE
);
INSERT INTO tb_localidade (co_localidade, no_localidade_dbl, co_ibge_dbl) VALUES
    (5565, 'Brasília', '5300108'),
    (5330, 'Goiânia', '5208707'),
    (5280, 'Aparecida de Goiânia', '5201405'),
    (5377, 'Luziânia', '5212501'),
    (5455, 'Valparaíso de Goiás', '5221858'),
    (3828, 'São Paulo', '3550308');

-- Every IBGE code the database uses, as 7 digits: a 6-digit code gets its check digit (weights 1,2,1,2,1,2, the
-- digits of each product summed, dv = (10 - sum % 10) % 10: 530010 -> 5300108); anything else is kept as stored.
CREATE TEMPORARY TABLE tmp_ibge_dbl AS
SELECT c.stored,
       CASE WHEN c.stored ~ '^[0-9]{6}$' THEN c.stored || (
           SELECT ((10 - sum(p / 10 + p % 10) % 10) % 10)::text
           FROM (SELECT substr(c.stored, i, 1)::int * (2 - i % 2) AS p FROM generate_series(1, 6) AS i) AS d)
       ELSE c.stored END AS ibge
FROM (SELECT co_ibge_municipio AS stored FROM tb_unidade_saude WHERE co_ibge_municipio IS NOT NULL
      UNION SELECT co_ibge_municipio FROM tb_adm_municipal WHERE co_ibge_municipio IS NOT NULL) AS c;

INSERT INTO tb_localidade (co_localidade, no_localidade_dbl, co_ibge_dbl)
SELECT (SELECT greatest(9000, max(co_localidade)) FROM tb_localidade) + row_number() OVER (ORDER BY n.ibge),
       'Município ' || n.ibge, n.ibge
FROM (SELECT DISTINCT ibge FROM tmp_ibge_dbl) AS n
WHERE NOT EXISTS (SELECT 1 FROM tb_localidade t WHERE t.co_ibge_dbl = n.ibge);

ALTER TABLE tb_adm_municipal ADD COLUMN co_localidade bigint REFERENCES tb_localidade (co_localidade);
UPDATE tb_adm_municipal m SET co_localidade = t.co_localidade
FROM tmp_ibge_dbl i JOIN tb_localidade t ON t.co_ibge_dbl = i.ibge
WHERE i.stored = m.co_ibge_municipio;
ALTER TABLE tb_adm_municipal ALTER COLUMN co_localidade SET NOT NULL;
DROP TABLE tmp_ibge_dbl;
ALTER TABLE tb_adm_municipal DROP COLUMN co_ibge_municipio;

-- Profiles: co_seq_perfil, no_perfil, no_perfil_padrao, type, localidade, situation.
ALTER TABLE tb_perfil RENAME COLUMN tp_perfil TO type;
ALTER TABLE tb_perfil RENAME COLUMN st_ativo TO situation;
ALTER TABLE tb_perfil
    ALTER COLUMN situation DROP DEFAULT,
    ALTER COLUMN situation TYPE integer USING CASE WHEN situation THEN 1 ELSE 0 END,
    ALTER COLUMN situation SET DEFAULT 1;
ALTER TABLE tb_perfil ADD COLUMN no_perfil_padrao varchar NULL;
UPDATE tb_perfil SET no_perfil_padrao = no_perfil WHERE st_padrao;
ALTER TABLE tb_perfil DROP COLUMN st_padrao;
ALTER TABLE tb_perfil ADD COLUMN localidade bigint NULL;

-- A profile's grants name their resource.
ALTER TABLE tb_perfil_recurso ADD COLUMN no_recurso varchar(255);
UPDATE tb_perfil_recurso pr SET no_recurso = r.no_recurso FROM tb_recurso r WHERE r.co_recurso = pr.co_recurso;
ALTER TABLE tb_perfil_recurso ALTER COLUMN no_recurso SET NOT NULL;
ALTER TABLE tb_perfil_recurso DROP COLUMN co_recurso;  -- with the primary key and the foreign key it is part of
ALTER TABLE tb_perfil_recurso ADD PRIMARY KEY (co_perfil, no_recurso, tp_operacao);
DROP TABLE tb_recurso;

-- Audit as real 5.x servers do it: ta_* shadow tables written by audit_tb_* triggers.
CREATE TABLE ta_lotacao (LIKE tb_lotacao);
CREATE TABLE ta_ator_papel (LIKE tb_ator_papel);
CREATE TABLE ta_ator_papel_perfil (LIKE rl_ator_papel_perfil);
ALTER TABLE ta_lotacao
    ADD COLUMN dt_auditoria_dbl timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN tp_operacao_dbl char(1),
    ADD COLUMN no_usuario_banco_dbl name DEFAULT current_user;
ALTER TABLE ta_ator_papel
    ADD COLUMN dt_auditoria_dbl timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN tp_operacao_dbl char(1),
    ADD COLUMN no_usuario_banco_dbl name DEFAULT current_user;
ALTER TABLE ta_ator_papel_perfil
    ADD COLUMN dt_auditoria_dbl timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN tp_operacao_dbl char(1),
    ADD COLUMN no_usuario_banco_dbl name DEFAULT current_user;

-- TG_ARGV[0]: the shadow table; its columns are the base table's, in order, then the three above. OLD is read only
-- for a DELETE and NEW only otherwise (PostgreSQL 9.6 refuses to read the record a trigger does not have).
CREATE FUNCTION fn_auditoria_ta_dbl() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'DELETE' THEN
        EXECUTE format('INSERT INTO %I SELECT ($1).*, now(), $2, current_user', TG_ARGV[0]) USING OLD, 'D';
    ELSE
        EXECUTE format('INSERT INTO %I SELECT ($1).*, now(), $2, current_user', TG_ARGV[0]) USING NEW, left(TG_OP, 1);
    END IF;
    RETURN NULL;
END
$fn$;

CREATE TRIGGER audit_tb_lotacao AFTER INSERT OR UPDATE OR DELETE ON tb_lotacao
    FOR EACH ROW EXECUTE PROCEDURE fn_auditoria_ta_dbl('ta_lotacao');
CREATE TRIGGER audit_tb_ator_papel AFTER INSERT OR UPDATE OR DELETE ON tb_ator_papel
    FOR EACH ROW EXECUTE PROCEDURE fn_auditoria_ta_dbl('ta_ator_papel');
CREATE TRIGGER audit_rl_ator_papel_perfil AFTER INSERT OR UPDATE OR DELETE ON rl_ator_papel_perfil
    FOR EACH ROW EXECUTE PROCEDURE fn_auditoria_ta_dbl('ta_ator_papel_perfil');
