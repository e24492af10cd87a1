"""Where the load-test stations stand: real cities, their regions and time zones, and fuel prices."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class City:
    name: str
    region: str  # ISO 3166-2
    latitude: float
    longitude: float
    timezone: str


CITIES = (
    City("Moscow", "RU-MOW", 55.7558, 37.6173, "Europe/Moscow"),
    City("Saint Petersburg", "RU-SPE", 59.9343, 30.3351, "Europe/Moscow"),
    City("Novosibirsk", "RU-NVS", 55.0084, 82.9357, "Asia/Novosibirsk"),
    City("Yekaterinburg", "RU-SVE", 56.8389, 60.6057, "Asia/Yekaterinburg"),
    City("Kazan", "RU-TA", 55.7963, 49.1088, "Europe/Moscow"),
    City("Nizhny Novgorod", "RU-NIZ", 56.2965, 43.9361, "Europe/Moscow"),
    City("Chelyabinsk", "RU-CHE", 55.1644, 61.4368, "Asia/Yekaterinburg"),
    City("Samara", "RU-SAM", 53.1959, 50.1002, "Europe/Samara"),
    City("Omsk", "RU-OMS", 54.9885, 73.3242, "Asia/Omsk"),
    City("Rostov-on-Don", "RU-ROS", 47.2357, 39.7015, "Europe/Moscow"),
    City("Ufa", "RU-BA", 54.7388, 55.9721, "Asia/Yekaterinburg"),
    City("Krasnoyarsk", "RU-KYA", 56.0153, 92.8932, "Asia/Krasnoyarsk"),
    City("Voronezh", "RU-VOR", 51.6720, 39.1843, "Europe/Moscow"),
    City("Perm", "RU-PER", 58.0105, 56.2502, "Asia/Yekaterinburg"),
    City("Volgograd", "RU-VGG", 48.7080, 44.5133, "Europe/Volgograd"),
    City("Krasnodar", "RU-KDA", 45.0355, 38.9753, "Europe/Moscow"),
    City("Saratov", "RU-SAR", 51.5331, 46.0342, "Europe/Saratov"),
    City("Tyumen", "RU-TYU", 57.1613, 65.5250, "Asia/Yekaterinburg"),
    City("Tolyatti", "RU-SAM", 53.5078, 49.4204, "Europe/Samara"),
    City("Izhevsk", "RU-UD", 56.8526, 53.2045, "Europe/Samara"),
    City("Barnaul", "RU-ALT", 53.3548, 83.7698, "Asia/Barnaul"),
    City("Irkutsk", "RU-IRK", 52.2870, 104.3050, "Asia/Irkutsk"),
    City("Khabarovsk", "RU-KHA", 48.4802, 135.0719, "Asia/Vladivostok"),
    City("Yaroslavl", "RU-YAR", 57.6261, 39.8845, "Europe/Moscow"),
    City("Vladivostok", "RU-PRI", 43.1198, 131.8869, "Asia/Vladivostok"),
    City("Tula", "RU-TUL", 54.1931, 37.6177, "Europe/Moscow"),
    City("Kaliningrad", "RU-KGD", 54.7104, 20.4522, "Europe/Kaliningrad"),
    City("Tver", "RU-TVE", 56.8587, 35.9176, "Europe/Moscow"),
    City("Kemerovo", "RU-KEM", 55.3547, 86.0873, "Asia/Novokuznetsk"),
    City("Ryazan", "RU-RYA", 54.6269, 39.6916, "Europe/Moscow"),
    City("Penza", "RU-PNZ", 53.1959, 45.0183, "Europe/Moscow"),
    City("Lipetsk", "RU-LIP", 52.6031, 39.5708, "Europe/Moscow"),
)

NETWORKS = ("Volga Fuel", "Siberia Petrol", "North-West Oil", "Ural Energy", "South Road")

# Posted prices in kopecks per litre (late 2026 levels); each station differs by a little.
BASE_PRICES_MINOR = {"diesel": 7_150, "ai92": 6_050, "ai95": 6_580}
PRICE_SPREAD_MINOR = 150

FIRST_NAMES = ("Ivan", "Sergey", "Alexey", "Dmitry", "Andrey", "Nikolay", "Pavel", "Oleg", "Viktor", "Yuri",
               "Mikhail", "Roman", "Artem", "Denis", "Igor", "Maxim", "Vladimir", "Anton", "Ilya", "Kirill")
LAST_NAMES = ("Ivanov", "Petrov", "Smirnov", "Kuznetsov", "Popov", "Vasiliev", "Sokolov", "Mikhailov",
              "Novikov", "Fedorov", "Morozov", "Volkov", "Alekseev", "Lebedev", "Semenov", "Egorov",
              "Pavlov", "Kozlov", "Stepanov", "Nikolaev")
PHONE_MODELS = ("Galaxy A54", "Redmi Note 12", "iPhone 13", "Pixel 7a", "Honor X8", "realme C55")
