-- 4.5.2: harmless additions (the double's invention).
ALTER TABLE tb_lote_transp ADD COLUMN ds_protocolo_envio varchar(100);
CREATE INDEX in_atend_dt_inicio ON tb_atend (dt_inicio);
-- @@FALHA_PARCIAL@@  (the BROKEN build commits everything above this line outside a transaction, then fails)
INSERT INTO tb_config_sistema (co_config_sistema, ds_texto) VALUES ('VERSAO_LEDI', '4.2.0');
ALTER TABLE tb_cidadao ADD COLUMN st_faleceu boolean NOT NULL DEFAULT false;
