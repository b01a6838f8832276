import factory
from django.contrib.auth import get_user_model

from payments.models import Payment, PaymentMethod, PaymentStatus
from paywave.encryption import crypto
from paywave.models import ApiClient
from wallets.models import AccountKind, Wallet
from wallets.services import wallet_credit_for_payment


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"wallet-app-{n}")

    @factory.post_generation
    def password(user, create: bool, extracted: str | None, **kwargs) -> None:  # noqa: N805
        user.set_password(extracted or "secret-password")
        if create:
            user.save(update_fields=["password"])


class ApiClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ApiClient

    user = factory.SubFactory(UserFactory)
    name = factory.LazyAttribute(lambda client: client.user.username)


class PaymentFactory(factory.django.DjangoModelFactory):
    """A pending PIX payment; `card=True` makes it a card payment, `paypal=True` a PayPal one."""

    class Meta:
        model = Payment

    class Params:
        card = factory.Trait(
            method=PaymentMethod.CARD,
            card_token="pm_card_visa",
            payer_tax_id="",
            payer_tax_id_hash="",
            payer_tax_id_last4="",
            pix_expires_in=None,
        )
        paypal = factory.Trait(
            method=PaymentMethod.PAYPAL,
            currency="USD",
            payer_tax_id="",
            payer_tax_id_hash="",
            payer_tax_id_last4="",
            pix_expires_in=None,
            return_url="https://wallet.example/paypal/done?order=1001",
        )

    client = factory.SubFactory(ApiClientFactory)
    amount = 1050
    currency = "BRL"
    method = PaymentMethod.PIX
    payer_name = "Ana Souza"
    payer_email = "ana@example.com"
    payer_email_hash = factory.LazyAttribute(lambda p: crypto.blind_index(p.payer_email))
    payer_tax_id = "12345678909"
    payer_tax_id_hash = factory.LazyAttribute(lambda p: crypto.blind_index(p.payer_tax_id))
    payer_tax_id_last4 = "8909"
    payer_country = "BR"
    pix_expires_in = 3600


class WalletFactory(factory.django.DjangoModelFactory):
    """An active BRL wallet; `funds=N` credits it N through a succeeded payment (the ledger)."""

    class Meta:
        model = Wallet
        skip_postgeneration_save = True

    kind = AccountKind.WALLET
    client = factory.SubFactory(ApiClientFactory)
    currency = "BRL"

    @factory.post_generation
    def funds(wallet, create: bool, extracted: int | None, **kwargs) -> None:  # noqa: N805
        if create and extracted:
            payment = PaymentFactory(
                client=wallet.client,
                currency=wallet.currency,
                amount=extracted,
                wallet_id=wallet.pk,
                status=PaymentStatus.SUCCEEDED,
                gateway="mercadopago",
            )
            wallet_credit_for_payment(payment)
            wallet.refresh_from_db()


class WebhookEndpointFactory(factory.django.DjangoModelFactory):
    """An enabled endpoint subscribed to every event; `url` is usually a test receiver's."""

    class Meta:
        model = "notifications.WebhookEndpoint"

    client = factory.SubFactory(ApiClientFactory)
    url = "http://127.0.0.1:9/hooks"
    events = factory.LazyFunction(lambda: ["*"])
    secret = factory.Sequence(lambda n: f"whsec_test_secret_{n}")
