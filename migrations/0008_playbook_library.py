from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('onsite', '0007_step_untick')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PlaybookDraft',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('incident_type', fields.CharField(max_length=64)),
                ('scope', fields.IntField(default=0)),
                ('site', fields.ForeignKeyField('onsite.Site', source_field='site_id', null=True, db_constraint=True, to_field='id', related_name='playbook_drafts', on_delete=OnDelete.CASCADE)),
                ('layer', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('updated_by', fields.ForeignKeyField('onsite.User', source_field='updated_by_id', null=True, db_constraint=True, to_field='id', related_name='playbook_drafts', on_delete=OnDelete.SET_NULL)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'playbook_draft', 'app': 'onsite', 'unique_together': (('incident_type', 'scope'),), 'pk_attr': 'id', 'table_description': "The layer being edited for one incident: the company's (no site) or a site's."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PlaybookVersion',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('incident_type', fields.CharField(db_index=True, max_length=64)),
                ('scope', fields.IntField(default=0)),
                ('site', fields.ForeignKeyField('onsite.Site', source_field='site_id', null=True, db_constraint=True, to_field='id', related_name='playbook_versions', on_delete=OnDelete.CASCADE)),
                ('number', fields.IntField()),
                ('layer', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('content', fields.JSONField(encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('shipped', fields.CharField(max_length=16)),
                ('base', fields.ForeignKeyField('onsite.PlaybookVersion', source_field='base_id', null=True, db_constraint=True, to_field='id', related_name='over', on_delete=OnDelete.RESTRICT)),
                ('note', fields.TextField(default='', db_default='', unique=False)),
                ('author', fields.ForeignKeyField('onsite.User', source_field='author_id', null=True, db_constraint=True, to_field='id', related_name='playbook_versions', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'playbook_version', 'app': 'onsite', 'unique_together': (('incident_type', 'scope', 'number'),), 'pk_attr': 'id', 'table_description': 'One published playbook, as it was: never changed after it is written.'},
            bases=['Model'],
        ),
    ]
