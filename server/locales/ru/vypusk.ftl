# vypusk: страницы браузера по-русски. У каждого сообщения есть английский двойник в
# ../en/vypusk.ftl (юнит-тест проверяет, что имена совпадают).

## Рамка
console = Консоль
console-brand = консоль
nav-distributions = Дистрибутивы
nav-licenses = Лицензии
nav-products = Продукты
nav-keys = API-ключи
nav-users = Пользователи
nav-audit = Журнал действий
nav-reports = Отчёты
log-out = Выйти
switch-language = English
yes = да
no = нет
never = никогда
create = Создать
save = Сохранить
edit = Изменить
fields = Поля
filter = Отобрать
search = Найти
cancel = Отмена
created = Создан
rename = Переименовать
forget = Забыть
import = Загрузить
export-csv = Выгрузить CSV
preview = Предпросмотр
days = { $count } дн.
never-lapses = бессрочно

## Сообщения после действия
notice-created = Создано.
notice-saved = Сохранено.
notice-published = Опубликовано: клиенты видят этот релиз.
notice-yanked = Отозвано: клиентам этот релиз больше не предлагается.
notice-deleted = Удалено.
notice-uploaded = Загружено.
notice-main = Основной файл изменён.
notice-removed = Файл удалён.
notice-revoked = API-ключ отозван.
notice-password = Пароль изменён.
notice-unpublished = Снято с публикации: клиенты больше не видят этот дистрибутив.
notice-republished = Снова опубликовано: клиенты видят этот дистрибутив.
notice-revoked-license = Лицензия отозвана: её установки больше не получают ссылок на скачивание.
notice-restored-license = Лицензия восстановлена.

## Ошибки и вход
error-csrf = Форма пришла без защитного (CSRF) токена или с чужим, поэтому ничего не сделано. Откройте форму заново и отправьте ещё раз.
error-needs-permission = Ваши роли не дают доступа к этой странице (нужно право { $permission }).
error-form-too-large = Форма больше { $bytes } байт.
error-log-in = Войти
login-title = Вход
login-hint = Логин и пароль пользователя или API-ключ в поле пароля при пустом логине.
login-user = Пользователь
login-password = Пароль или API-ключ
login-button = Войти
login-wrong = неверный логин, пароль или API-ключ
login-no-permission = с этими данными нельзя смотреть статистику
logout-hint = Завершает этот сеанс на всех серверах установки.

## Главная
home-logged-in = Вы вошли как { $login }.
home-permissions = Права: { $list }.
home-distributions = Дистрибутивы и релизы
home-distributions-what = создание, загрузка, публикация, отзыв
home-licenses-what = клиенты, фичи, подписки, загрузка и выгрузка CSV
home-products-what = названия лицензионных продуктов и фич
home-keys-what = для скриптов и CI
home-users = Пользователи и роли
home-audit-what = кто, что и когда сделал
home-statistics = Статистика скачиваний
home-password = Ваш пароль

## Списки
pager-nothing = Пока пусто.
pager-of = из
pager-previous = назад
pager-next = дальше

## Дистрибутивы
distribution-new = Новый дистрибутив
distribution-code = Код (TYPE)
distribution-code-hint = Код (TYPE клиента; латинские буквы, цифры, _ - .; потом не меняется)
distribution-name = Название
distribution-description = Описание
distribution-developer = Разработчик
distribution-label = Метка
distribution-label-hint = Метка (клиенты видят её как версию модуля)
distribution-promo = Ссылка на описание
distribution-visible = Виден клиентам
distribution-unpublished = снят с публикации
distribution-license = Лицензия
distribution-free = бесплатно
distribution-gate-legend = Лицензия (оба номера или ни одного для бесплатного дистрибутива)
distribution-gate-now = Сейчас:
distribution-hide-unlicensed = Скрывать от клиентов без лицензии
distribution-scheme-short = Версии
distribution-scheme-hint = Схема версий (не меняется, когда есть релизы)
scheme-1c = 1c (четыре числа)
distribution-unpublish = Снять с публикации
distribution-unpublish-note = Клиенты перестанут видеть дистрибутив и его релизы; ничего не удаляется.
distribution-republish = Опубликовать снова
product = Продукт
feature = Фича
catalogue-link = Названия продуктов и фич

## Релизы
releases = Релизы
release = Релиз
release-new = Новый релиз
release-version = Версия
release-status = Состояние
release-files = Файлы
release-compatibility = Совместимость
release-published-at = Опубликован
release-published-on = Опубликован { $at }
release-yanked-because = Отозван: { $reason }
releases-none = Релизов нет.
releases-none-with-status = Релизов в этом состоянии нет.
status-all = все
status-draft = черновик
status-published = опубликован
status-yanked = отозван
prerelease = предварительный
release-prerelease-hint = Предварительный релиз (только для установок, принимающих бету)
compat-legend = Совместимость: конфигурации и их версии (* = любая конфигурация; пустой минимум = с любой версии)
compat-conf = Конфигурация
compat-min = Минимальная версия
compat-max = Максимальная версия (пусто: без ограничения)
compat-any-configuration = любая конфигурация
compat-range = { $conf } { $range }
compat-or-later = { $conf } { $min } и новее
rows-hint = Сохраните, чтобы получить ещё пустые строки; очистите строку, чтобы удалить её.
changelog = Список изменений
changelog-markdown = Список изменений (Markdown)
changelog-preview = Показать список изменений
metadata-legend = Метаданные (ключ = значение)
metadata-key = Ключ
metadata-value = Значение
release-create-draft = Создать черновик
release-draft-note = Релиз начинается с черновика: загрузите файлы, затем опубликуйте.
release-publish-button = Опубликовать…
release-yank-button = Отозвать…
release-delete-draft = Удалить черновик
file-name = Имя
file-size = Размер
file-main = Основной
file-main-mark = основной
file-make-main = Сделать основным
file-remove = Удалить
files-none = Файлов пока нет.
upload = Загрузить
upload-hint = Файлы (до { $max } каждый; файл с тем же именем заменяется)
upload-stored = Загружено файлов: %count%.
upload-failed = %name% не сохранён: %reason%

## Публикация и отзыв
publish = Опубликовать
yank = Отозвать
publish-now = Опубликовать сейчас
yank-now = Отозвать сейчас
back-to-release = Назад к релизу
clients-will-see = Что увидят клиенты
confirm-distribution-hidden = Дистрибутив снят с публикации: клиенты не увидят этот релиз, пока дистрибутив не опубликуют снова.
confirm-module = Модуль
confirm-prerelease = предварительный, только для установок, принимающих бету
confirm-offered-to = Кому предлагается
confirm-nobody = никому: сначала добавьте строку совместимости
confirm-main-file = основной: ссылка на скачивание
confirm-no-files = нет
confirm-changelog = Список изменений, как его увидят
confirm-license-free = бесплатно: все установки получают ссылки на скачивание
confirm-license-gated = ссылки на скачивание получают только установки, в лицензии которых есть { $what }
confirm-license-hidden = остальные релиз не видят
confirm-license-shown = остальные видят его без ссылок
confirm-yank-effect = Установкам больше не предлагается { $version }; у кого он уже стоит, у тех остаётся.
confirm-yank-nothing-left = Других опубликованных релизов нет: клиентам не будет предложено ничего.
confirm-yank-instead = Вместо него клиентам будет предложен { $version } как самый новый.
confirm-yank-final = Отозванный релиз нельзя опубликовать снова.
yank-reason = Причина (для ваших записей)

## API-ключи
key-created = Ключ «{ $name }» создан
key-shown-once = Скопируйте его сейчас: он показывается только один раз и хранится в виде хеша.
key-how-to-use = Передавайте его в заголовке x-api-key: … или Authorization: Bearer … при обращении к API.
key-new = Новый ключ
key-name-hint = Название (кто или что им пользуется)
key-permissions-hint = Права (не больше, чем у ваших ролей):
key-create = Создать ключ
keys-all = Все ключи
keys-yours = Ваши ключи
key-name = Название
key-prefix = Начинается с
key-permissions = Права
key-user = Пользователь
key-last-used = Последнее использование
key-revoke = Отозвать

## Пользователи
user-created = Пользователь { $login } создан
user-link-hint = Передайте пользователю эту одноразовую ссылку для установки пароля. Она показывается только сейчас, срабатывает один раз и истекает { $expires }.
user-new = Новый пользователь
user-login = Логин
user-roles = Роли
user-roles-hint = owner: всё, включая пользователей · release: дистрибутивы, релизы, файлы · support: лицензии и клиенты · viewer: каталог и статистика без данных клиентов
user-create = Создать пользователя
user-roles-state = Роли и состояние
user-password = Пароль
user-disabled = отключён
user-password-set = задан
user-password-not-yet = ещё нет

## Учётная запись и пароли
account = Ваша учётная запись
account-change-password = Сменить пароль
account-by-key = Этот сеанс открыт API-ключом. Чтобы сменить пароль, войдите с паролем.
account-current = Текущий пароль
account-sessions-end = Все ваши сеансы завершатся, и этот тоже: войдите снова с новым паролем.
password-new-hint = Новый пароль (не короче 12 символов)
password-again = Новый пароль ещё раз
password-mismatch = пароли не совпадают
set-password-title = Задайте пароль
set-password-button = Задать пароль
set-password-then-login = Затем войдите

## Журнал действий
audit-when = Когда (UTC)
audit-who = Кто
audit-channel = Канал
audit-action = Действие
audit-target = Объект
audit-outcome = Итог
audit-details = Подробности
audit-client = Откуда
audit-from = С
audit-to = По
audit-any = любой
audit-refused-only = только отказы
via-api = API
via-console = консоль
via-cli = командная строка
via-login = вход

## Лицензии
license-search = Ключ, клиент или ИНН
license-new = Новая лицензия
license-key = Ключ
license-key-hint = Ключ (латинские буквы, цифры и -, от 4 до 64)
license-customer = Клиент
license-itn = ИНН
license-features = Фичи (продукт/фича)
license-state = Состояние
license-active = действует
license-revoked = отозвана
license-beta = бета
license-beta-hint = Бета: получает предварительные релизы
license-features-legend = Фичи (номера продукта и фичи из лицензии дистрибутива) и окончание подписки
license-until = Действует до
license-until-hint = Действует до (пусто: бессрочно или срок подписки фичи по умолчанию при добавлении)
license-rows-hint = Сохраните, чтобы получить ещё пустые строки; очистите строку, чтобы удалить фичу.
license-revoke = Отозвать
license-restore = Восстановить
license-revoke-note = Все установки с этим ключом сразу перестанут получать ссылки на скачивание.
import-csv = Загрузка CSV
import-hint = Колонки key, customer, itn, beta, revoked, product, feature, active_until; по строке на фичу; UTF-8 или Windows-1251, «,» или «;». Всё или ничего: при одной ошибочной строке ничего не загружается. Лицензия из файла заменяет лицензию с тем же ключом.
import-done = Загружено лицензий: { $licenses }, фич: { $features }.

## Продукты
products-title = Продукты и фичи
products-hint = Названия лицензионных номеров, которыми закрыты дистрибутивы (продукт / фича) и которые есть в лицензиях. Срок подписки фичи по умолчанию получает лицензия, в которую фичу добавили без даты окончания.
product-number = продукт { $number }
product-number-label = Номер продукта
product-name = Название
feature-number = Номер фичи
feature-default = Подписка по умолчанию
feature-default-hint = Дней по умолчанию (пусто: бессрочно)
feature-name-it = Назвать фичу
product-name-it = Назвать продукт
product-forget = Забыть продукт
products-none = Ни один продукт ещё не назван.

## Отчёты
reports-brand = отчёты
report-title = Статистика скачиваний
report-overview = Статистика скачиваний: обзор
report-overview-of = Статистика скачиваний: обзор { $distribution }
report-distribution-title = { $code }: статистика
report-from = С (UTC)
report-to = По (UTC)
report-all-distributions = Все дистрибутивы
report-days = Установленная база: последние N дней
report-show = Показать
report-no-data = За этот период данных нет.
report-total = Итого
report-share = Доля
report-no-conf = (не указана)
report-no-license = (без лицензии)
report-new-install = (новая установка)
report-nothing-installed = (ничего не установлено)
report-downloads-per-day = Скачивания по дням
report-downloads-by-conf = Скачивания по конфигурациям
report-share-by-conf = Доли конфигураций
report-top-releases = Самые скачиваемые релизы
report-top-note = { $top } самых скачиваемых из { $all } релизов; в CSV есть все.
report-releases-downloaded = Скачано релизов
report-downloads-per-release = Скачивания по релизам
report-base-chart = Установленная база по версиям, последние { $days } дн.
report-base-title = Установленная база по версиям (установки, замеченные за последние { $days } дн.)
report-base-note-licensed = Установка — это ключ лицензии плюс CONF; её версия — та, что сообщила последняя проверка.
report-base-note-free = Установка — это адрес клиента (в виде хеша) плюс CONF; её версия — та, что сообщила последняя проверка.
report-upgrade-paths = Пути обновления (установленная → скачанная версия)
report-back-to-overview = ← Обзор
col-day = День (UTC)
col-distribution = Дистрибутив
col-name = Название
col-release_id = Номер релиза
col-version = Версия
col-conf = Конфигурация
col-license = Лицензия
col-downloads = Скачивания
col-completed = Завершено
col-bytes = Передано байт
col-from_version = Установленная версия
col-to_version = Скачанная версия
col-installations = Установки
