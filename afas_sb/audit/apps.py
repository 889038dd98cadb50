from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "afas_sb.audit"
    label = "audit"
    verbose_name = "Audit"
