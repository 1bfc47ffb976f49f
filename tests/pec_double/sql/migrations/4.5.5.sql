-- 4.5.5: record of CNES imports made through POST /api/cnes/{municipioId} (the double's invention).
CREATE TABLE tb_cnes_importacao (
    co_seq_cnes_importacao bigserial PRIMARY KEY,
    dt_importacao          timestamp NOT NULL DEFAULT now(),
    co_ibge_municipio      varchar(7) NOT NULL,
    no_arquivo             varchar(255),
    ds_sha256              varchar(64) NOT NULL,
    qt_unidades            integer NOT NULL DEFAULT 0,
    qt_profissionais       integer NOT NULL DEFAULT 0,
    qt_lotacoes            integer NOT NULL DEFAULT 0,
    co_usuario             bigint REFERENCES tb_usuario (co_seq_usuario)
);
INSERT INTO tb_config_sistema (co_config_sistema, ds_texto) VALUES ('ATUALIZAR_PERFIS_IMPORTACAO_CNES', 'false');
