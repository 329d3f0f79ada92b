from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('onsite', '0001_initial')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Report',
            name='escalated_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Report',
            name='repair_note',
            field=fields.TextField(default='', db_default='', unique=False),
        ),
        ops.AddField(
            model_name='Report',
            name='repaired_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Report',
            name='reply_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Report',
            name='reply_by',
            field=fields.ForeignKeyField('onsite.User', source_field='reply_by_id', null=True, db_constraint=True, to_field='id', related_name='published_replies', on_delete=OnDelete.SET_NULL),
        ),
        ops.AddField(
            model_name='Report',
            name='reply_text',
            field=fields.TextField(default='', db_default='', unique=False),
        ),
        # Reports from before escalation existed are not escalated all at once
        # on the first start after the upgrade: they count as dealt with.
        ops.RunSQL("UPDATE report SET escalated_at = received_at WHERE escalated_at IS NULL"),
    ]
