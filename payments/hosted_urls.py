"""The hosted payment page, under /pay/ (config/urls.py): each takes `?t=<token>`."""

from django.urls import path

from . import hosted_views

urlpatterns = [
    path("<uuid:payment_id>", hosted_views.hosted_page, name="hosted-page"),
    path("<uuid:payment_id>/status", hosted_views.hosted_status, name="hosted-status"),
    path("<uuid:payment_id>/qrcode.png", hosted_views.hosted_qrcode, name="hosted-qrcode"),
    path("<uuid:payment_id>/return", hosted_views.hosted_return, name="hosted-return"),
]
