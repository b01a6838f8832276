from django.contrib.admin.apps import AdminConfig


class PayWaveAdminConfig(AdminConfig):
    """Django's admin, with PayWave's site (two-factor login) as `admin.site`."""

    default_site = "paywave.admin_site.PayWaveAdminSite"
