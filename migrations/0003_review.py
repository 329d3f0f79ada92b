from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from server.models import Verdict
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('onsite', '0002_followup')]

    initial = False

    operations = [
        ops.AddField(
            model_name='AnalysisAnswer',
            name='note',
            field=fields.TextField(default='', db_default='', unique=False),
        ),
        ops.AddField(
            model_name='AnalysisAnswer',
            name='verdict',
            field=fields.CharEnumField(description='OK: ok\nGAP: gap\nNA: na', enum_type=Verdict, max_length=8),
        ),
        ops.RemoveField(model_name='AnalysisAnswer', name='answer'),
        ops.AddField(
            model_name='CorrectiveAction',
            name='created_by',
            field=fields.ForeignKeyField('onsite.User', source_field='created_by_id', null=True, db_constraint=True, to_field='id', related_name='created_actions', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='CorrectiveAction',
            name='done_note',
            field=fields.TextField(default='', db_default='', unique=False),
        ),
        ops.AddField(
            model_name='CorrectiveAction',
            name='done_photos',
            field=fields.JSONField(default=list, db_default='[]', encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads),
        ),
        ops.AddField(
            model_name='CorrectiveAction',
            name='reminded_on',
            field=fields.DateField(null=True),
        ),
        ops.AddField(
            model_name='CorrectiveAction',
            name='updated_at',
            field=fields.DatetimeField(null=True, auto_now=True, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Report',
            name='closing_waiver',
            field=fields.TextField(default='', db_default='', unique=False),
        ),
    ]
