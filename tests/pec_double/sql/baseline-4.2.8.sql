-- PEC e-SUS APS TEST DOUBLE: baseline schema of version 4.2.8.
-- Table and column names follow the PEC's naming style (co_, nu_, no_, ds_, dt_, st_, tp_, qt_) and the
-- names listed in docs/pec-facts.md. Columns beyond those names are the double's own inventions.

CREATE TABLE tb_config_sistema (
    co_config_sistema varchar(100) PRIMARY KEY,
    ds_texto          text
);

CREATE TABLE tb_usuario (
    co_seq_usuario        bigserial PRIMARY KEY,
    ds_login              varchar(11) NOT NULL UNIQUE CHECK (ds_login ~ '^[0-9]{11}$'),  -- CPF
    ds_senha              varchar(255) NOT NULL,   -- pbkdf2_sha256$<iter>$<salt b64>$<hash b64> (double's format)
    st_bloqueado          boolean NOT NULL DEFAULT false,
    st_forcar_troca_senha boolean NOT NULL DEFAULT true,
    dt_ultimo_acesso      timestamp
);

CREATE TABLE tb_prof (
    co_seq_prof     bigserial PRIMARY KEY,
    co_usuario      bigint UNIQUE REFERENCES tb_usuario (co_seq_usuario),
    nu_cns          varchar(15),
    no_profissional varchar(255) NOT NULL,
    nu_cpf          varchar(11) NOT NULL UNIQUE,
    dt_nascimento   date,
    no_sexo         varchar(20)
);

CREATE TABLE tb_unidade_saude (
    co_seq_unidade_saude bigserial PRIMARY KEY,
    nu_cnes              varchar(7) NOT NULL UNIQUE CHECK (nu_cnes ~ '^[0-9]{7}$'),
    no_unidade_saude     varchar(255) NOT NULL,
    co_ibge_municipio    varchar(7),
    st_ativo             boolean NOT NULL DEFAULT true
);

CREATE TABLE tb_equipe (
    co_seq_equipe    bigserial PRIMARY KEY,
    nu_ine           varchar(10) NOT NULL UNIQUE,
    no_equipe        varchar(255) NOT NULL,
    co_unidade_saude bigint NOT NULL REFERENCES tb_unidade_saude (co_seq_unidade_saude),
    tp_equipe        varchar(10),
    st_ativo         boolean NOT NULL DEFAULT true
);

CREATE TABLE tb_cbo (
    co_cbo      bigserial PRIMARY KEY,
    co_cbo_2002 varchar(6) NOT NULL UNIQUE,
    no_cbo      varchar(255) NOT NULL
);

CREATE TABLE tb_ator_papel (
    co_seq_ator_papel bigserial PRIMARY KEY,
    co_prof           bigint NOT NULL REFERENCES tb_prof (co_seq_prof),
    tp_ator_papel     varchar(30) NOT NULL,   -- LOTACAO, ADMINISTRADOR_GERAL, ADMINISTRADOR_MUNICIPAL
    dt_criacao        timestamp NOT NULL DEFAULT now()
);

CREATE TABLE tb_lotacao (
    co_ator_papel      bigint PRIMARY KEY REFERENCES tb_ator_papel (co_seq_ator_papel),
    co_cbo             bigint NOT NULL REFERENCES tb_cbo (co_cbo),
    co_unidade_saude   bigint NOT NULL REFERENCES tb_unidade_saude (co_seq_unidade_saude),
    co_equipe          bigint REFERENCES tb_equipe (co_seq_equipe),
    st_ativo           boolean NOT NULL DEFAULT true,
    dt_importacao_cnes timestamp
);

CREATE TABLE tb_perfil (
    co_seq_perfil bigserial PRIMARY KEY,
    no_perfil     varchar(255) NOT NULL UNIQUE,
    tp_perfil     varchar(30) NOT NULL,   -- LOTACAO, ADMINISTRADOR_MUNICIPAL, GESTAO_MUNICIPAL, ADMINISTRADOR_GERAL
    st_ativo      boolean NOT NULL DEFAULT true,
    st_padrao     boolean NOT NULL DEFAULT false
);

CREATE TABLE tb_recurso (
    co_recurso integer PRIMARY KEY,
    no_recurso varchar(100) NOT NULL UNIQUE
);

CREATE TABLE tb_perfil_recurso (
    co_perfil   bigint NOT NULL REFERENCES tb_perfil (co_seq_perfil),
    co_recurso  integer NOT NULL REFERENCES tb_recurso (co_recurso),
    tp_operacao varchar(20) NOT NULL,     -- VISUALIZAR, EDITAR, EXECUTAR
    PRIMARY KEY (co_perfil, co_recurso, tp_operacao)
);

CREATE TABLE rl_ator_papel_perfil (
    co_ator_papel bigint NOT NULL REFERENCES tb_ator_papel (co_seq_ator_papel),
    co_perfil     bigint NOT NULL REFERENCES tb_perfil (co_seq_perfil),
    PRIMARY KEY (co_ator_papel, co_perfil)
);

CREATE TABLE rl_perfil_cbo_padrao (
    co_perfil bigint NOT NULL REFERENCES tb_perfil (co_seq_perfil),
    co_cbo    bigint NOT NULL REFERENCES tb_cbo (co_cbo),
    PRIMARY KEY (co_perfil, co_cbo)
);

CREATE TABLE tb_adm_geral (
    co_ator_papel bigint PRIMARY KEY REFERENCES tb_ator_papel (co_seq_ator_papel)
);

CREATE TABLE tb_adm_municipal (
    co_ator_papel     bigint PRIMARY KEY REFERENCES tb_ator_papel (co_seq_ator_papel),
    co_ibge_municipio varchar(7) NOT NULL
);

-- Audit (the double's table; the real audit table's name is unknown).
CREATE TABLE tb_auditoria_evento (
    co_seq_auditoria_evento bigserial PRIMARY KEY,
    no_tabela               varchar(63) NOT NULL,
    tp_operacao             varchar(10) NOT NULL,
    ds_registro_antigo      text,
    ds_registro_novo        text,
    no_usuario_banco        varchar(63) NOT NULL DEFAULT current_user,
    dt_evento               timestamp NOT NULL DEFAULT clock_timestamp()
);

CREATE FUNCTION fn_auditoria_registro() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO tb_auditoria_evento (no_tabela, tp_operacao, ds_registro_antigo, ds_registro_novo)
    VALUES (TG_TABLE_NAME, TG_OP,
            CASE WHEN TG_OP IN ('UPDATE', 'DELETE') THEN row_to_json(OLD)::text END,
            CASE WHEN TG_OP IN ('UPDATE', 'INSERT') THEN row_to_json(NEW)::text END);
    RETURN NULL;
END
$fn$;

CREATE TRIGGER tg_auditoria_lotacao AFTER INSERT OR UPDATE OR DELETE ON tb_lotacao
    FOR EACH ROW EXECUTE FUNCTION fn_auditoria_registro();
CREATE TRIGGER tg_auditoria_ator_papel AFTER INSERT OR UPDATE OR DELETE ON tb_ator_papel
    FOR EACH ROW EXECUTE FUNCTION fn_auditoria_registro();
CREATE TRIGGER tg_auditoria_ator_papel_perfil AFTER INSERT OR UPDATE OR DELETE ON rl_ator_papel_perfil
    FOR EACH ROW EXECUTE FUNCTION fn_auditoria_registro();

-- Production transmission ("transmissão de dados").
CREATE TABLE tb_situacao_lote_transp (
    co_situacao integer PRIMARY KEY,
    no_situacao varchar(30) NOT NULL UNIQUE
);

CREATE TABLE tb_lote_transp (
    co_seq_lote_transp bigserial PRIMARY KEY,
    dt_geracao         timestamp NOT NULL DEFAULT now(),
    dt_inicio_periodo  date NOT NULL,
    dt_fim_periodo     date NOT NULL,
    co_situacao        integer NOT NULL REFERENCES tb_situacao_lote_transp (co_situacao),
    qt_registros       integer NOT NULL DEFAULT 0,
    dt_envio           timestamp
);

CREATE TABLE tb_dado_transp (
    co_seq_dado_transp bigserial PRIMARY KEY,
    nu_uuid            uuid NOT NULL UNIQUE,
    tp_dado            integer NOT NULL,        -- LEDI tipoDadoSerializado (2 cadastro individual, 4 atendimento individual)
    co_unidade_saude   bigint NOT NULL REFERENCES tb_unidade_saude (co_seq_unidade_saude),
    dt_registro        timestamp NOT NULL,
    co_lote_transp     bigint REFERENCES tb_lote_transp (co_seq_lote_transp),   -- NULL: not yet in a lote
    ds_dado            bytea NOT NULL           -- DadoTransporteThrift, TBinaryProtocol (simplified, see README)
);
CREATE INDEX in_dado_transp_lote ON tb_dado_transp (co_lote_transp);

-- Clinical data.
CREATE TABLE tb_cidadao (
    co_seq_cidadao   bigserial PRIMARY KEY,
    no_cidadao       varchar(255) NOT NULL,
    nu_cns           varchar(15),
    nu_cpf           varchar(11),
    dt_nascimento    date,
    no_sexo          varchar(20),
    no_mae           varchar(255),
    ds_logradouro    varchar(255),
    nu_telefone      varchar(20),
    co_unidade_saude bigint REFERENCES tb_unidade_saude (co_seq_unidade_saude),
    dt_atualizado    timestamp NOT NULL DEFAULT now()
);
CREATE INDEX in_cidadao_cns ON tb_cidadao (nu_cns);
CREATE INDEX in_cidadao_cpf ON tb_cidadao (nu_cpf);

CREATE TABLE tb_atend (
    co_seq_atend bigserial PRIMARY KEY,
    co_cidadao   bigint NOT NULL REFERENCES tb_cidadao (co_seq_cidadao),
    co_lotacao   bigint NOT NULL REFERENCES tb_lotacao (co_ator_papel),
    dt_inicio    timestamp NOT NULL,
    dt_fim       timestamp,
    tp_atend     integer NOT NULL DEFAULT 1,
    ds_evolucao  text
);
CREATE INDEX in_atend_cidadao ON tb_atend (co_cidadao);

-- Seed data ---------------------------------------------------------------------------------------
INSERT INTO tb_config_sistema (co_config_sistema, ds_texto) VALUES
    ('VERSAOBANCODADOS', '4.2.8'),
    ('TIPOINSTALACAO', 'SERVIDOR'),
    ('TREINAMENTO', 'false'),
    -- Inventions of the double: stand-ins for the "transmissão automática" setting (real storage unknown).
    ('TRANSMISSAO_AUTOMATICA', 'true'),
    ('HORARIO_TRANSMISSAO', '00:00');

INSERT INTO tb_situacao_lote_transp (co_situacao, no_situacao) VALUES
    (1, 'GERADO'), (2, 'ENVIADO'), (3, 'ERRO_ENVIO');

INSERT INTO tb_cbo (co_cbo_2002, no_cbo) VALUES
    ('225142', 'MÉDICO DA ESTRATÉGIA DE SAÚDE DA FAMÍLIA'),
    ('225125', 'MÉDICO CLÍNICO'),
    ('223565', 'ENFERMEIRO DA ESTRATÉGIA DE SAÚDE DA FAMÍLIA'),
    ('223505', 'ENFERMEIRO'),
    ('322245', 'TÉCNICO DE ENFERMAGEM DA ESTRATÉGIA DE SAÚDE DA FAMÍLIA'),
    ('322205', 'TÉCNICO DE ENFERMAGEM'),
    ('322230', 'AUXILIAR DE ENFERMAGEM'),
    ('515105', 'AGENTE COMUNITÁRIO DE SAÚDE'),
    ('515140', 'AGENTE DE COMBATE ÀS ENDEMIAS'),
    ('223208', 'CIRURGIÃO DENTISTA - CLÍNICO GERAL'),
    ('223293', 'CIRURGIÃO-DENTISTA DA ESTRATÉGIA DE SAÚDE DA FAMÍLIA'),
    ('322425', 'TÉCNICO EM SAÚDE BUCAL DA ESTRATÉGIA DE SAÚDE DA FAMÍLIA'),
    ('322430', 'AUXILIAR EM SAÚDE BUCAL DA ESTRATÉGIA DE SAÚDE DA FAMÍLIA'),
    ('223405', 'FARMACÊUTICO'),
    ('223605', 'FISIOTERAPEUTA GERAL'),
    ('223710', 'NUTRICIONISTA'),
    ('251510', 'PSICÓLOGO CLÍNICO'),
    ('251605', 'ASSISTENTE SOCIAL'),
    ('223810', 'FONOAUDIÓLOGO'),
    ('223905', 'TERAPEUTA OCUPACIONAL'),
    ('224140', 'PROFISSIONAL DE EDUCAÇÃO FÍSICA NA SAÚDE'),
    ('422110', 'RECEPCIONISTA EM GERAL'),
    ('411010', 'ASSISTENTE ADMINISTRATIVO'),
    ('131210', 'GERENTE DE SERVIÇOS DE SAÚDE'),
    ('412110', 'DIGITADOR');

INSERT INTO tb_recurso (co_recurso, no_recurso) VALUES
    (1, 'PRONTUARIO'), (2, 'AGENDA'), (3, 'CIDADAO'), (4, 'CDS'), (5, 'VACINACAO'),
    (6, 'RELATORIOS'), (7, 'TRANSMISSAO_DADOS'), (8, 'IMPORTAR_CNES'), (9, 'GESTAO_USUARIOS'), (10, 'CONFIGURACOES');

-- The 26 default profiles (names are the double's; none of them is view-only).
INSERT INTO tb_perfil (no_perfil, tp_perfil, st_padrao) VALUES
    ('Médico', 'LOTACAO', true),
    ('Enfermeiro', 'LOTACAO', true),
    ('Técnico e auxiliar de enfermagem', 'LOTACAO', true),
    ('Agente comunitário de saúde', 'LOTACAO', true),
    ('Agente de combate às endemias', 'LOTACAO', true),
    ('Cirurgião-dentista', 'LOTACAO', true),
    ('Técnico e auxiliar em saúde bucal', 'LOTACAO', true),
    ('Farmacêutico', 'LOTACAO', true),
    ('Fisioterapeuta', 'LOTACAO', true),
    ('Nutricionista', 'LOTACAO', true),
    ('Psicólogo', 'LOTACAO', true),
    ('Assistente social', 'LOTACAO', true),
    ('Fonoaudiólogo', 'LOTACAO', true),
    ('Terapeuta ocupacional', 'LOTACAO', true),
    ('Profissional de educação física', 'LOTACAO', true),
    ('Recepcionista', 'LOTACAO', true),
    ('Auxiliar administrativo', 'LOTACAO', true),
    ('Coordenador da unidade de saúde', 'LOTACAO', true),
    ('Digitador', 'LOTACAO', true),
    ('Outros profissionais de nível superior', 'LOTACAO', true),
    ('Outros profissionais de nível médio', 'LOTACAO', true),
    ('Estagiário', 'LOTACAO', true),
    ('Gestor municipal', 'GESTAO_MUNICIPAL', true),
    ('Gestor estadual', 'GESTAO_ESTADUAL', true),
    ('Administrador municipal', 'ADMINISTRADOR_MUNICIPAL', true),
    ('Administrador da instalação', 'ADMINISTRADOR_GERAL', true);

-- Every default profile can view and edit something: none is view-only.
INSERT INTO tb_perfil_recurso (co_perfil, co_recurso, tp_operacao)
SELECT p.co_seq_perfil, r.co_recurso, op.tp
FROM tb_perfil p
JOIN tb_recurso r ON CASE
        WHEN p.tp_perfil = 'LOTACAO' AND p.no_perfil IN ('Recepcionista', 'Auxiliar administrativo', 'Digitador') THEN r.co_recurso IN (2, 3, 4)
        WHEN p.tp_perfil = 'LOTACAO' AND p.no_perfil IN ('Agente comunitário de saúde', 'Agente de combate às endemias') THEN r.co_recurso IN (3, 4)
        WHEN p.tp_perfil = 'LOTACAO' THEN r.co_recurso IN (1, 2, 3, 4, 5, 6)
        WHEN p.tp_perfil IN ('GESTAO_MUNICIPAL', 'GESTAO_ESTADUAL') THEN r.co_recurso IN (6, 7)
        WHEN p.tp_perfil = 'ADMINISTRADOR_MUNICIPAL' THEN r.co_recurso IN (6, 7, 8, 9)
        ELSE r.co_recurso IN (7, 8, 9, 10) END
CROSS JOIN (VALUES ('VISUALIZAR'), ('EDITAR')) AS op (tp);

INSERT INTO rl_perfil_cbo_padrao (co_perfil, co_cbo)
SELECT p.co_seq_perfil, c.co_cbo
FROM (VALUES
    ('Médico', '225142'), ('Médico', '225125'),
    ('Enfermeiro', '223565'), ('Enfermeiro', '223505'),
    ('Técnico e auxiliar de enfermagem', '322245'), ('Técnico e auxiliar de enfermagem', '322205'),
    ('Técnico e auxiliar de enfermagem', '322230'),
    ('Agente comunitário de saúde', '515105'), ('Agente de combate às endemias', '515140'),
    ('Cirurgião-dentista', '223208'), ('Cirurgião-dentista', '223293'),
    ('Técnico e auxiliar em saúde bucal', '322425'), ('Técnico e auxiliar em saúde bucal', '322430'),
    ('Farmacêutico', '223405'), ('Fisioterapeuta', '223605'), ('Nutricionista', '223710'),
    ('Psicólogo', '251510'), ('Assistente social', '251605'), ('Fonoaudiólogo', '223810'),
    ('Terapeuta ocupacional', '223905'), ('Profissional de educação física', '224140'),
    ('Recepcionista', '422110'), ('Auxiliar administrativo', '411010'),
    ('Coordenador da unidade de saúde', '131210'), ('Digitador', '412110')
) AS m (no_perfil, co_cbo_2002)
JOIN tb_perfil p ON p.no_perfil = m.no_perfil
JOIN tb_cbo c ON c.co_cbo_2002 = m.co_cbo_2002;
