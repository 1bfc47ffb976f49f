-- Strict variant: the transmission tables as real servers show them (docs/pec-facts.md, third review), applied by
-- the installer after every install and update. Real servers track transmission per destination node; there is no
-- tb_situacao_lote_transp. Attested names keep their names: the tables, tb_dado_transp.co_unico_dado_serializado
-- (the record's unique id) and tb_lote_transp.dt_criacao. Every other column is the double's own and ends in _dbl,
-- so nothing in the collection can depend on it by accident: only a lab inventory (standing for what a survey of a
-- real server would show) may name one. Idempotent: does nothing once tb_situacao_lote_transp is gone.
DO $strict$
BEGIN
IF to_regclass('public.tb_situacao_lote_transp') IS NULL THEN
    RETURN;
END IF;

CREATE TABLE tb_nodo (
    co_seq_nodo  bigserial PRIMARY KEY,
    no_nodo_dbl  varchar(255) NOT NULL UNIQUE
);
INSERT INTO tb_nodo (no_nodo_dbl) VALUES ('Centralizador Nacional');

-- Status names per node are not public: these are the double's.
CREATE TABLE tb_situacao_lote_transp_nodo (
    co_situacao_dbl  integer PRIMARY KEY,
    no_situacao_dbl  varchar(30) NOT NULL UNIQUE
);
INSERT INTO tb_situacao_lote_transp_nodo VALUES (1, 'AGUARDANDO_ENVIO'), (2, 'ENVIADO'), (3, 'ERRO_ENVIO');

CREATE TABLE tb_lote_transp_item (
    co_seq_lote_transp_item_dbl  bigserial PRIMARY KEY,
    co_lote_transp_dbl           bigint NOT NULL REFERENCES tb_lote_transp (co_seq_lote_transp),
    co_dado_transp_dbl           bigint NOT NULL UNIQUE REFERENCES tb_dado_transp (co_seq_dado_transp)
);

CREATE TABLE tb_lote_transp_nodo (
    co_lote_transp_dbl  bigint NOT NULL REFERENCES tb_lote_transp (co_seq_lote_transp),
    co_nodo_dbl         bigint NOT NULL REFERENCES tb_nodo (co_seq_nodo),
    co_situacao_dbl     integer NOT NULL REFERENCES tb_situacao_lote_transp_nodo (co_situacao_dbl),
    dt_envio_dbl        timestamp,
    PRIMARY KEY (co_lote_transp_dbl, co_nodo_dbl)
);

CREATE TABLE tb_lote_transp_item_nodo (
    co_lote_transp_item_dbl  bigint NOT NULL REFERENCES tb_lote_transp_item (co_seq_lote_transp_item_dbl),
    co_nodo_dbl              bigint NOT NULL REFERENCES tb_nodo (co_seq_nodo),
    co_situacao_dbl          integer NOT NULL REFERENCES tb_situacao_lote_transp_nodo (co_situacao_dbl),
    PRIMARY KEY (co_lote_transp_item_dbl, co_nodo_dbl)
);

-- Which lote was saved to a file ("Salvar em arquivo"), when.
CREATE TABLE tb_lote_transp_historico_exprt (
    co_seq_historico_exprt_dbl  bigserial PRIMARY KEY,
    co_lote_transp_dbl          bigint NOT NULL REFERENCES tb_lote_transp (co_seq_lote_transp),
    dt_exportacao_dbl           timestamp NOT NULL DEFAULT now(),
    no_arquivo_dbl              varchar(255)
);

CREATE TABLE tb_envio_log (
    co_seq_envio_log_dbl  bigserial PRIMARY KEY,
    dt_envio_dbl          timestamp NOT NULL DEFAULT now(),
    ds_mensagem_dbl       text
);

CREATE TABLE tb_arquivo_temporario (
    co_seq_arquivo_temporario_dbl  bigserial PRIMARY KEY,
    no_arquivo_dbl                 varchar(255)
);

-- What the old model held, carried over.
INSERT INTO tb_lote_transp_item (co_lote_transp_dbl, co_dado_transp_dbl)
    SELECT co_lote_transp, co_seq_dado_transp FROM tb_dado_transp WHERE co_lote_transp IS NOT NULL;
INSERT INTO tb_lote_transp_nodo (co_lote_transp_dbl, co_nodo_dbl, co_situacao_dbl, dt_envio_dbl)
    SELECT l.co_seq_lote_transp, (SELECT min(co_seq_nodo) FROM tb_nodo),
           CASE s.no_situacao WHEN 'ENVIADO' THEN 2 WHEN 'ERRO_ENVIO' THEN 3 ELSE 1 END, l.dt_envio
    FROM tb_lote_transp l JOIN tb_situacao_lote_transp s USING (co_situacao);
INSERT INTO tb_lote_transp_item_nodo (co_lote_transp_item_dbl, co_nodo_dbl, co_situacao_dbl)
    SELECT i.co_seq_lote_transp_item_dbl, n.co_nodo_dbl, n.co_situacao_dbl
    FROM tb_lote_transp_item i JOIN tb_lote_transp_nodo n ON n.co_lote_transp_dbl = i.co_lote_transp_dbl;

ALTER TABLE tb_lote_transp DROP COLUMN co_situacao;
ALTER TABLE tb_lote_transp DROP COLUMN dt_envio;
ALTER TABLE tb_lote_transp RENAME COLUMN dt_geracao TO dt_criacao;
ALTER TABLE tb_lote_transp RENAME COLUMN dt_inicio_periodo TO dt_inicio_periodo_dbl;
ALTER TABLE tb_lote_transp RENAME COLUMN dt_fim_periodo TO dt_fim_periodo_dbl;
ALTER TABLE tb_lote_transp RENAME COLUMN qt_registros TO qt_registros_dbl;
DROP TABLE tb_situacao_lote_transp;

DROP INDEX IF EXISTS in_dado_transp_lote;
ALTER TABLE tb_dado_transp DROP COLUMN co_lote_transp;
ALTER TABLE tb_dado_transp RENAME COLUMN nu_uuid TO co_unico_dado_serializado;
ALTER TABLE tb_dado_transp ALTER COLUMN co_unico_dado_serializado TYPE varchar(44) USING co_unico_dado_serializado::text;
ALTER TABLE tb_dado_transp RENAME COLUMN tp_dado TO tp_dado_dbl;
ALTER TABLE tb_dado_transp RENAME COLUMN co_unidade_saude TO co_unidade_saude_dbl;
ALTER TABLE tb_dado_transp RENAME COLUMN dt_registro TO dt_registro_dbl;
ALTER TABLE tb_dado_transp RENAME COLUMN ds_dado TO ds_dado_dbl;
END
$strict$;
