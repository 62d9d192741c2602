"""Provisioning gateways: broker credentials, ACL entries, client certificates, bundles."""
