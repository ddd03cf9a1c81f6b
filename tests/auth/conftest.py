from tests.auth.auth_support import ec_key, ed_key, hs_config, rsa_key, rsa_key2, sign_hs

__all__ = ["ec_key", "ed_key", "hs_config", "rsa_key", "rsa_key2", "sign_hs"]
