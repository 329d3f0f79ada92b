from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('onsite', '0006_sessions')]

    initial = False

    operations = [
        ops.AddField(
            model_name='ReportStep',
            name='unchecked_at',
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='ReportStep',
            name='unchecked_by',
            field=fields.ForeignKeyField('onsite.User', source_field='unchecked_by_id', null=True, db_constraint=True, to_field='id', related_name='step_unticks', on_delete=OnDelete.SET_NULL),
        ),
    ]
