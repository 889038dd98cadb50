from django.apps import AppConfig


class UsersConfig(AppConfig):
    name = "afas_sb.users"
    label = "users"
    verbose_name = "Gebruikers"
