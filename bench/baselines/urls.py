from django.urls import path

from .apis import BareInsertApi

urlpatterns = [path("bare-insert", BareInsertApi.as_view(), name="bench-bare-insert")]
