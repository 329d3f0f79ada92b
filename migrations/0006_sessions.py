from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('onsite', '0005_channels')]

    initial = False

    operations = [
        ops.CreateModel(
            name='LoginFailure',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('key', fields.CharField(db_index=True, max_length=64)),
                ('at', fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'login_failure', 'app': 'onsite', 'pk_attr': 'id', 'table_description': 'A failed login (or one being checked), counted against a username or an address.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='LoginSession',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('token_hash', fields.CharField(unique=True, max_length=64)),
                ('user', fields.ForeignKeyField('onsite.User', source_field='user_id', db_constraint=True, to_field='id', related_name='login_sessions', on_delete=OnDelete.CASCADE)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('last_seen_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('user_agent', fields.CharField(default='', db_default='', max_length=200)),
                ('revoked_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'login_session', 'app': 'onsite', 'pk_attr': 'id', 'table_description': 'One login on one device, revoked alone (log out) or with the rest.'},
            bases=['Model'],
        ),
        ops.AlterModelOptions(
            name='User',
            options={'table': 'user', 'app': 'onsite', 'pk_attr': 'id', 'table_description': 'A member of staff: session_version is bumped when every login is revoked.'},
        ),
    ]
