-- 4.3.2: harmless additions (the double's invention): a citizen e-mail column and a config key.
ALTER TABLE tb_cidadao ADD COLUMN ds_email varchar(255);
INSERT INTO tb_config_sistema (co_config_sistema, ds_texto) VALUES ('PRAZO_EXPIRACAO_SENHA_DIAS', '0');
