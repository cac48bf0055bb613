import factory

from kehu.hr.models import Department
from kehu.system.models import User

PASSWORD = "kehu-demo-2026"


class DepartmentFactory(factory.django.DjangoModelFactory):
    """Builds departments through the service so the tree path is right."""

    class Meta:
        model = Department

    name = factory.Sequence(lambda n: f"部门{n}")
    parent = None

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from kehu.core.tree import PATH_WIDTH

        department = model_class.objects.create(*args, **kwargs)
        parent_path = department.parent.path if department.parent_id else "/"
        department.path = f"{parent_path}{department.pk:0{PATH_WIDTH}d}/"
        department.save(update_fields=["path"])
        return department


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    display_name = factory.LazyAttribute(lambda o: o.username)
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    phone = "13812345678"
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if create and extracted:
            self.roles.set(extracted)
        if create:
            self.save()
