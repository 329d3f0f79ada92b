from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from server.models.sites import ContactKind
from tortoise.fields.base import OnDelete
from uuid import uuid4
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('onsite', '0003_review')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AdminLog',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('actor', fields.ForeignKeyField('onsite.User', source_field='actor_id', null=True, db_constraint=True, to_field='id', related_name='admin_changes', on_delete=OnDelete.SET_NULL)),
                ('actor_name', fields.CharField(max_length=64)),
                ('action', fields.CharField(max_length=32)),
                ('target', fields.CharField(max_length=100)),
                ('data', fields.JSONField(default=dict, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'admin_log', 'app': 'onsite', 'pk_attr': 'id', 'table_description': 'One change made by an admin (or the CLI): who, what, to what, when.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SiteContact',
            fields=[
                ('id', fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ('site', fields.ForeignKeyField('onsite.Site', source_field='site_id', db_constraint=True, to_field='id', related_name='contacts', on_delete=OnDelete.CASCADE)),
                ('name', fields.CharField(max_length=100)),
                ('phone', fields.CharField(max_length=32)),
                ('kind', fields.CharEnumField(description='LIFT: lift\nPROPERTY_OFFICE: property_office\nWATER: water\nPOWER: power\nGAS: gas\nSECURITY: security\nOTHER: other', enum_type=ContactKind, max_length=20)),
                ('incident_types', fields.JSONField(default=list, db_default='[]', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'site_contact', 'app': 'onsite', 'pk_attr': 'id', 'table_description': "One of a site's own emergency numbers (its lift company's 24-hour line)."},
            bases=['Model'],
        ),
    ]
