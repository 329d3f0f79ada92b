from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from server.models.alerts import ChannelKind
from server.models.reports import Severity
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('onsite', '0004_administration')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AlertChannel',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('site', fields.ForeignKeyField('onsite.Site', source_field='site_id', db_constraint=True, to_field='id', related_name='channels', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='WECOM: wecom\nDINGTALK: dingtalk', enum_type=ChannelKind, max_length=16)),
                ('name', fields.CharField(max_length=100)),
                ('webhook_url', fields.CharField(max_length=1000)),
                ('secret', fields.CharField(default='', db_default='', max_length=200)),
                ('min_severity', fields.CharEnumField(null=True, description='LOW: low\nMEDIUM: medium\nHIGH: high\nCRITICAL: critical', enum_type=Severity, max_length=16)),
                ('events', fields.JSONField(default=list, db_default='[]', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('language', fields.CharField(default='zh-CN', db_default='zh-CN', max_length=8)),
                ('active', fields.BooleanField(default=True, db_default=True)),
                ('last_sent_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_error', fields.CharField(default='', db_default='', max_length=500)),
                ('last_error_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'alert_channel', 'app': 'onsite', 'pk_attr': 'id', 'table_description': "A site's work-chat group robot that alerts reach, beside Web Push."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='PushDelivery',
            name='channel',
            field=fields.ForeignKeyField('onsite.AlertChannel', source_field='channel_id', null=True, db_constraint=True, to_field='id', related_name='deliveries', on_delete=OnDelete.SET_NULL),
        ),
    ]
