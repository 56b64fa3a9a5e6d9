//! Real administrative divisions of Anhui Province (GB/T 2260 codes), with
//! plate letters and real road names, so generated addresses and ID numbers
//! look like the ones the departments hold.

/// The province every synthetic subject lives in.
pub const PROVINCE: &str = "安徽省";

/// A district or county of a city.
#[derive(Debug, PartialEq, Eq)]
pub struct District {
    /// Name, e.g. `谯城区` or `涡阳县`.
    pub name: &'static str,
    /// Six-digit GB/T 2260 code, e.g. `341602`.
    pub code: &'static str,
}

impl District {
    /// True for an urban district (区), whose agencies are branches of the
    /// city's; counties and county-level cities have their own.
    pub fn is_urban(&self) -> bool {
        self.name.ends_with('区')
    }
}

/// A prefecture-level city.
#[derive(Debug, PartialEq, Eq)]
pub struct City {
    /// Name, e.g. `亳州市`.
    pub name: &'static str,
    /// The letter after `皖` on vehicle plates.
    pub plate_letter: char,
    /// Its districts and counties.
    pub districts: &'static [District],
    /// Main roads, for street addresses.
    pub streets: &'static [&'static str],
}

impl City {
    /// The district or county called `name`.
    pub fn district(&self, name: &str) -> Option<&'static District> {
        self.districts.iter().find(|d| d.name == name)
    }
}

macro_rules! districts {
    ($($name:literal $code:literal),+ $(,)?) => {
        &[$(District { name: $name, code: $code }),+]
    };
}

/// The sixteen cities of Anhui.
pub static CITIES: &[City] = &[
    City {
        name: "合肥市",
        plate_letter: 'A',
        districts: districts!["瑶海区" "340102", "庐阳区" "340103", "蜀山区" "340104", "包河区" "340111", "肥西县" "340123"],
        streets: &[
            "长江西路",
            "黄山路",
            "望江西路",
            "金寨路",
            "徽州大道",
            "马鞍山路",
            "潜山路",
            "芜湖路",
            "繁华大道",
        ],
    },
    City {
        name: "芜湖市",
        plate_letter: 'B',
        districts: districts!["镜湖区" "340202", "鸠江区" "340207", "弋江区" "340209"],
        streets: &[
            "中山北路",
            "北京中路",
            "赭山西路",
            "银湖北路",
            "九华中路",
            "长江中路",
        ],
    },
    City {
        name: "蚌埠市",
        plate_letter: 'C',
        districts: districts!["龙子湖区" "340302", "蚌山区" "340303", "禹会区" "340304", "淮上区" "340311", "怀远县" "340321"],
        streets: &[
            "胜利中路",
            "解放路",
            "东海大道",
            "涂山路",
            "延安路",
            "朝阳路",
        ],
    },
    City {
        name: "淮南市",
        plate_letter: 'D',
        districts: districts!["大通区" "340402", "田家庵区" "340403", "谢家集区" "340404"],
        streets: &["洞山中路", "朝阳中路", "国庆中路", "淮舜南路", "舜耕中路"],
    },
    City {
        name: "马鞍山市",
        plate_letter: 'E',
        districts: districts!["花山区" "340503", "雨山区" "340504", "当涂县" "340521"],
        streets: &["湖北路", "雨山路", "湖南路", "红旗中路", "太白大道"],
    },
    City {
        name: "淮北市",
        plate_letter: 'F',
        districts: districts!["杜集区" "340602", "相山区" "340603", "烈山区" "340604"],
        streets: &["淮海中路", "人民中路", "孟山路", "惠黎路", "相山南路"],
    },
    City {
        name: "铜陵市",
        plate_letter: 'G',
        districts: districts!["铜官区" "340705", "义安区" "340706"],
        streets: &["长江西路", "义安大道", "石城路", "北京西路"],
    },
    City {
        name: "安庆市",
        plate_letter: 'H',
        districts: districts!["迎江区" "340802", "大观区" "340803", "宜秀区" "340811", "怀宁县" "340822"],
        streets: &["人民路", "湖心中路", "菱湖南路", "华中路", "皖江大道"],
    },
    City {
        name: "黄山市",
        plate_letter: 'J',
        districts: districts!["屯溪区" "341002", "黄山区" "341003", "歙县" "341021"],
        streets: &["新安北路", "黄山西路", "延安路", "昱中街"],
    },
    City {
        name: "滁州市",
        plate_letter: 'M',
        districts: districts!["琅琊区" "341102", "南谯区" "341103", "全椒县" "341124"],
        streets: &["琅琊大道", "丰乐大道", "南谯北路", "天长路", "紫薇南路"],
    },
    City {
        name: "阜阳市",
        plate_letter: 'K',
        districts: districts!["颍州区" "341202", "颍东区" "341203", "颍泉区" "341204", "临泉县" "341221"],
        streets: &["颍州中路", "清河路", "人民中路", "淮河路", "颍河西路"],
    },
    City {
        name: "宿州市",
        plate_letter: 'L',
        districts: districts!["埇桥区" "341302", "砀山县" "341321", "萧县" "341322"],
        streets: &["汴河中路", "银河一路", "淮海北路", "胜利路"],
    },
    City {
        name: "六安市",
        plate_letter: 'N',
        districts: districts!["金安区" "341502", "裕安区" "341503", "叶集区" "341504", "霍邱县" "341522"],
        streets: &["皖西大道", "梅山南路", "佛子岭路", "解放南路"],
    },
    City {
        name: "亳州市",
        plate_letter: 'S',
        districts: districts!["谯城区" "341602", "涡阳县" "341621", "蒙城县" "341622", "利辛县" "341623"],
        streets: &[
            "魏武大道",
            "芍花路",
            "药都路",
            "汤王大道",
            "希夷大道",
            "光明路",
            "杜仲路",
        ],
    },
    City {
        name: "池州市",
        plate_letter: 'R',
        districts: districts!["贵池区" "341702", "东至县" "341721", "青阳县" "341723"],
        streets: &["长江中路", "秋浦西路", "清溪大道", "九华山大道"],
    },
    City {
        name: "宣城市",
        plate_letter: 'P',
        districts: districts!["宣州区" "341802", "郎溪县" "341821", "广德市" "341882"],
        streets: &["鳌峰中路", "梅溪路", "昭亭南路", "薰化路"],
    },
];

/// The city called `name`.
pub fn city(name: &str) -> Option<&'static City> {
    CITIES.iter().find(|c| c.name == name)
}

/// The city and district whose six-digit code begins `id` (a resident ID or
/// the region part of a USCC).
pub fn district_by_code(code: &str) -> Option<(&'static City, &'static District)> {
    CITIES.iter().find_map(|c| {
        c.districts
            .iter()
            .find(|d| code.starts_with(d.code))
            .map(|d| (c, d))
    })
}

/// The public security organ of a district: a branch of the city bureau for
/// an urban district (`亳州市公安局谯城分局`), the county's own bureau otherwise.
pub fn public_security_bureau(city: &City, district: &District) -> String {
    match district.name.strip_suffix('区') {
        Some(stem) => format!("{}公安局{stem}分局", city.name),
        None => format!("{}公安局", district.name),
    }
}

/// The tax bureau of a district, e.g. `国家税务总局亳州市谯城区税务局`.
pub fn tax_bureau(city: &City, district: &District) -> String {
    if district.is_urban() {
        format!("国家税务总局{}{}税务局", city.name, district.name)
    } else {
        format!("国家税务总局{}税务局", district.name)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_are_unique_six_digits_and_belong_to_anhui() {
        let mut seen = HashSet::new();
        for city in CITIES {
            assert!(
                !city.districts.is_empty() && !city.streets.is_empty(),
                "{}",
                city.name
            );
            for d in city.districts {
                assert_eq!(d.code.len(), 6);
                assert!(d.code.starts_with("34") && d.code.bytes().all(|b| b.is_ascii_digit()));
                assert!(seen.insert(d.code), "duplicate {}", d.code);
            }
        }
        let letters: HashSet<char> = CITIES.iter().map(|c| c.plate_letter).collect();
        assert_eq!(letters.len(), CITIES.len());
    }

    #[test]
    fn lookups_find_real_divisions() {
        let (city, district) = district_by_code("341602198501011234").unwrap();
        assert_eq!((city.name, district.name), ("亳州市", "谯城区"));
        assert_eq!(city.district("谯城区"), Some(district));
        assert!(district_by_code("110101").is_none());
        assert_eq!(self::city("合肥市").unwrap().plate_letter, 'A');
    }

    #[test]
    fn agency_names_follow_district_or_county() {
        let bozhou = city("亳州市").unwrap();
        let qiaocheng = bozhou.district("谯城区").unwrap();
        let guoyang = bozhou.district("涡阳县").unwrap();
        assert_eq!(
            public_security_bureau(bozhou, qiaocheng),
            "亳州市公安局谯城分局"
        );
        assert_eq!(public_security_bureau(bozhou, guoyang), "涡阳县公安局");
        assert_eq!(
            tax_bureau(bozhou, qiaocheng),
            "国家税务总局亳州市谯城区税务局"
        );
        assert_eq!(tax_bureau(bozhou, guoyang), "国家税务总局涡阳县税务局");
        let xuancheng = city("宣城市").unwrap();
        let guangde = xuancheng.district("广德市").unwrap();
        assert_eq!(tax_bureau(xuancheng, guangde), "国家税务总局广德市税务局");
        assert_eq!(public_security_bureau(xuancheng, guangde), "广德市公安局");
    }
}
