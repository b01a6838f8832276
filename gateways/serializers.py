from rest_framework import serializers


class GatewayHealthSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["up", "down"])
    latency_ms = serializers.IntegerField()
    checked_at = serializers.DateTimeField()
    detail = serializers.CharField(allow_blank=True)


class GatewayCircuitSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=["closed", "open", "half_open"])
    failures = serializers.IntegerField(help_text="Consecutive retryable failures.")
    opened_at = serializers.DateTimeField(allow_null=True)


class GatewayOutputSerializer(serializers.Serializer):
    """Schema of a gateway as staff see it (the view builds the dicts)."""

    code = serializers.CharField()
    display_name = serializers.CharField()
    adapter = serializers.CharField()
    enabled = serializers.BooleanField()
    priority = serializers.IntegerField()
    methods = serializers.ListField(child=serializers.CharField())
    currencies = serializers.ListField(child=serializers.CharField())
    countries = serializers.ListField(child=serializers.CharField())
    timeout_ms = serializers.IntegerField()
    health = GatewayHealthSerializer(allow_null=True, help_text="null until first probed.")
    circuit = GatewayCircuitSerializer()


class GatewayListOutputSerializer(serializers.Serializer):
    has_more = serializers.BooleanField(help_text="Always false: the whole list is one page.")
    results = GatewayOutputSerializer(many=True)
